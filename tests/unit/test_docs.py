"""The docs a newcomer walks: README short, with a table of contents that leads to its headings, and every
relative link in README and docs/ leading to a file that exists (and to a heading of it, when it names one).

Anchors are made from headings as GitHub makes them: lower case, punctuation dropped but `-` and `_`, spaces
to hyphens, and `-1`, `-2` ... for a heading met again. Headings and links inside code blocks do not count.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]
MOST_LINES = 250
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def prose(text: str) -> list[str]:
    """The page's lines outside code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def anchors(text: str) -> set[str]:
    """Every anchor the page's headings make."""
    made: set[str] = set()
    for line in prose(text):
        heading = _HEADING.match(line)
        if heading is None:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(2).lower()).replace(" ", "-")
        count, unique = 0, slug
        while unique in made:
            count += 1
            unique = f"{slug}-{count}"
        made.add(unique)
    return made


def links(text: str) -> list[str]:
    """Every relative link target of the page's prose (web and mail links left out)."""
    found = [target for line in prose(text) for target in _LINK.findall(line)]
    return [target for target in found if not re.match(r"^[a-z]+:", target)]


def broken(page: Path) -> list[str]:
    """The page's links that lead to no file, or to no heading of the file they name."""
    problems = []
    for target in links(page.read_text()):
        name, _, anchor = target.partition("#")
        path = (page.parent / name).resolve() if name else page
        if not path.exists():
            problems.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path.read_text()):
            problems.append(f"{target}: no such heading")
    return problems


def test_readme_is_shorter_than_250_lines():
    # Given README, Then a newcomer reads it whole: under 250 lines
    assert len(README.read_text().splitlines()) < MOST_LINES


def test_readme_opens_with_a_table_of_contents_whose_every_link_is_one_of_its_headings():
    # Given README's table of contents: the list under its "Contents" heading
    text = README.read_text()
    contents = text.split("\n## Contents\n", 1)[1].split("\n## ", 1)[0]
    entries = re.findall(r"^\d+\. \[[^\]]+\]\(#([^)]+)\)$", contents, flags=re.MULTILINE)

    # Then it lists every second-level heading after it, in order, each link leading to that heading
    headings = [line[3:] for line in prose(text) if line.startswith("## ") and line != "## Contents"]
    slugs = [re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings]
    assert entries == slugs
    assert set(entries) <= anchors(text)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO)))
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(page: Path):
    # Given a page of README or docs/, When its links are followed, Then each leads somewhere
    assert broken(page) == []


def test_a_link_to_a_missing_file_or_heading_is_found(tmp_path: Path):
    # Given a page linking to a heading it has, one it lacks, a file that exists and one that does not
    (tmp_path / "other.md").write_text("# Other\n\n## Its part\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n[here](#page) [gone](#nowhere) [there](other.md#its-part) [lost](missing.md)\n"
        "```\n[in code](ignored.md)\n```\n[web](https://example.com/x)\n"
    )

    # When it is checked, Then exactly the two that lead nowhere are named
    assert broken(page) == ["#nowhere: no such heading", "missing.md: no such file"]
