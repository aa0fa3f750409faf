"""docs/ml-test-score.md stays true: each section's sum matches its rows, and every test
and file a row names exists."""

import re
from fractions import Fraction

from churnloop.settings import PROJECT_ROOT

PAGE = PROJECT_ROOT / "docs" / "ml-test-score.md"
SCORES = {"0": Fraction(0), "½": Fraction(1, 2), "1": Fraction(1)}


def sections() -> dict[str, list[list[str]]]:
    rows: dict[str, list[list[str]]] = {}
    current = None
    for line in PAGE.read_text().splitlines():
        if line.startswith("## ") and line != "## Summary":
            current = line[3:]
            rows[current] = []
        elif current and re.match(r"\| \d ", line):
            rows[current].append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_each_section_has_seven_rows_that_add_up_to_its_summary():
    summary = dict(re.findall(r"^\| ([A-Z][\w ]+) \| ([\d.]+) of 7 \|$", PAGE.read_text(), re.M))
    for name, rows in sections().items():
        assert len(rows) == 7, name
        total = sum(SCORES[row[2]] for row in rows)
        assert Fraction(summary[name]) == total, f"{name}: rows add up to {float(total)}"


def test_every_named_test_and_file_exists():
    text = PAGE.read_text()
    for path, test in re.findall(r"`((?:tests|bench|docs|include)/[\w/.-]+)(?:::(\w+))?`", text):
        assert (PROJECT_ROOT / path).exists(), path
        if test:
            assert f"def {test}(" in (PROJECT_ROOT / path).read_text(), f"{path}::{test}"
    for test in re.findall(r"`::(\w+)`", text):
        assert any(
            f"def {test}(" in p.read_text() for p in (PROJECT_ROOT / "tests").rglob("*.py")
        ), test
