"""The images docker-compose.yaml pulls: each is pinned (a tag that names a version, or a
digest), and none comes from a repository known to be gone, where ``up`` would fail.
"""

from __future__ import annotations

import re

import pytest

from tests.compose_support import S3_STORE, load_compose, resolve

GONE_REPOSITORIES = {
    "minio/minio": "removed from Docker Hub by MinIO (pull access denied); community "
    "edition archived",
    "minio/mc": "removed from Docker Hub with minio/minio",
}
"""Image repositories that no longer serve pulls: compose would fail at ``up``."""

_VERSION_TAG = re.compile(r"v?\d[\w.-]*")


def image_problem(reference: str) -> str | None:
    """Why compose cannot pull ``reference`` reproducibly, or None: its repository is gone,
    or it has no tag, or a tag that names no version (``latest``, ``stable``). A digest
    (``@sha256:...``) pins it; a major version alone (``postgres:16``) is a tag."""
    name, _, digest = reference.partition("@")
    tagged = ":" in name.rsplit("/", 1)[-1]  # a colon before the last "/" is a registry port
    repository, tag = name.rsplit(":", 1) if tagged else (name, "")
    repository = repository.removeprefix("docker.io/")
    if repository in GONE_REPOSITORIES:
        return f"{repository} is gone: {GONE_REPOSITORIES[repository]}"
    if digest:
        return None
    if not tag:
        return "no tag: pulls whatever latest is that day"
    if not _VERSION_TAG.fullmatch(tag):
        return f"tag {tag!r} names no version"
    return None


def test_every_image_is_pinned_to_a_version_that_exists() -> None:
    """Images built here (``build:``) are tagged by compose itself; all others are pulled."""
    compose = load_compose()
    pulled = {
        name: resolve(spec["image"], f"{name}.image")
        for name, spec in compose["services"].items()
        if "build" not in spec
    }
    assert set(pulled) >= {"postgres", "redis", S3_STORE, "prometheus", "grafana"}
    problems = {name: image_problem(image) for name, image in pulled.items()}
    refused = {name: problem for name, problem in problems.items() if problem}
    assert not refused, f"compose cannot pull these reproducibly: {refused}"


@pytest.mark.parametrize(
    ("reference", "problem"),
    [
        ("minio/minio:RELEASE.2025-09-07T16-13-09Z", "minio/minio is gone"),
        ("docker.io/minio/mc:latest", "minio/mc is gone"),
        ("redis", "no tag"),
        ("localhost:5000/churnloop", "no tag"),
        ("redis:latest", "tag 'latest' names no version"),
        ("grafana/grafana:main", "tag 'main' names no version"),
        ("postgres:16", None),
        ("localhost:5000/churnloop:1.2.0", None),
        ("chrislusf/seaweedfs:4.47", None),
        ("prom/prometheus:v3.5.0", None),
        ("redis@sha256:" + "0" * 64, None),
    ],
)
def test_an_unpinned_or_vanished_image_is_refused(reference: str, problem: str | None) -> None:
    found = image_problem(reference)
    if problem is None:
        assert found is None, f"{reference} refused: {found}"
    else:
        assert found is not None and found.startswith(problem), f"{reference}: {found}"
