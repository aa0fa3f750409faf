"""Drive the Airflow 3 UI in a Playwright page as a user does: sign in, read what it shows.

Selectors are roles, visible text and URLs: the UI's CSS classes are generated (Chakra) and
change with every Airflow release.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urljoin

from playwright.sync_api import Locator, Page, expect

DAG_LINK = re.compile(r"(?:.*/)?dags/([^/?#]+)")
DAG_COUNT = re.compile(r"^\d+ Dags?$")


def log_in(page: Page, base_url: str, username: str, password: str) -> None:
    """Open the UI and sign in on the simple auth manager's form if it asks for it."""
    page.goto(f"{base_url}/")
    username_box = page.get_by_label("Username")
    navigation = page.get_by_role("link", name="Dags", exact=True).first
    expect(username_box.or_(navigation).first).to_be_visible()
    if username_box.is_visible():
        username_box.fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
    expect(navigation, f"signing in as {username!r} did not reach the UI").to_be_visible()


def dag_ids(page: Page, base_url: str) -> list[str]:
    """The DAG ids the DAG list links to."""
    page.goto(f"{base_url}/dags")
    expect(page.get_by_role("heading", name=DAG_COUNT)).to_be_visible()
    expect(page.locator('a[href*="/dags/"]').first).to_be_visible()  # rows come after the count
    hrefs = page.get_by_role("link").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    return sorted({match[1] for href in hrefs if href and (match := DAG_LINK.fullmatch(href))})


def open_trigger_form(page: Page, base_url: str, dag_id: str) -> Locator:
    """The trigger dialog of ``dag_id``, opened from the DAG's page."""
    page.goto(f"{base_url}/dags/{quote(dag_id, safe='')}")
    page.get_by_role("button", name="Trigger Dag").click()
    dialog = page.get_by_role("dialog").filter(has_text=f"Trigger Dag - {dag_id}")
    expect(dialog).to_be_visible()
    return dialog


def trigger_form_params(dialog: Locator, sections: list[str]) -> dict[str, dict[str, str]]:
    """The Params a trigger dialog shows: section -> {title: the description under it}, the
    fields' values left out."""
    return {name: _section_params(dialog, name) for name in sections}


def _section_params(dialog: Locator, name: str) -> dict[str, str]:
    section = dialog.get_by_role("button", name=name, exact=True)
    if section.get_attribute("aria-expanded") != "true":
        section.click()
    # A section's region is labelled by an id that may hold a space, so it has no accessible
    # name to find it by: follow the button's aria-controls instead.
    region = dialog.locator(f'[id="{section.get_attribute("aria-controls")}"]')
    expect(region.get_by_role("group").first).to_be_visible()
    params = {}
    for field in region.get_by_role("group").all():
        lines = [line.strip() for line in field.inner_text().splitlines()]
        editor = {  # an array's value is edited in a Monaco editor: its lines are the value's
            line.strip()
            for shown in field.locator(".monaco-editor").all()
            for line in shown.inner_text().splitlines()
        }
        lines = [line for line in lines if line not in ("", "*") and line not in editor]
        if lines:
            params[lines[0]] = " ".join(lines[1:])
    return params


def follow_extra_link(
    page: Page, base_url: str, dag_id: str, run_id: str, task_id: str, name: str
) -> Page:
    """Click a task instance's extra link ``name``; the page it opens (a new tab or this one)."""
    dag, run, task = (quote(part, safe="") for part in (dag_id, run_id, task_id))
    page.goto(f"{base_url}/dags/{dag}/runs/{run}/tasks/{task}/details")
    link = page.get_by_role("link", name=name, exact=True)
    expect(link, f"no extra link {name!r} on {dag_id}/{run_id}/{task_id}").to_be_visible()
    if link.get_attribute("target") == "_blank":
        with page.context.expect_page() as opened:
            link.click()
        target = opened.value
        target.wait_for_load_state()
        return target
    href = urljoin(page.url, link.get_attribute("href"))
    link.click()
    page.wait_for_url(lambda url: url == href)
    return page


def dag_run(page: Page, base_url: str, dag_id: str, run_id: str) -> dict:
    """A DAG run as the REST API returns it, read with the browser's session."""
    response = page.request.get(
        f"{base_url}/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"
    )
    assert response.ok, f"GET dag run {dag_id}/{run_id}: {response.status} {response.text()}"
    return response.json()
