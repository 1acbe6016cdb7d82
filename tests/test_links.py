"""Every link a user is shown resolves: relative links (and their #anchors) in README.md and docs/*.md,
the docs/ files gbreg's own code and messages point to, and the in-page links of a report."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest
from markdown_it import MarkdownIt

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _tokens(path: Path):
    return MarkdownIt("commonmark").enable("table").parse(path.read_text(encoding="utf-8"))


def github_anchors(path: Path) -> set[str]:
    """The ids GitHub gives a page's headings: lower case, punctuation dropped, spaces to hyphens,
    ``-1``, ``-2`` ... for repeats."""
    anchors: set[str] = set()
    tokens = _tokens(path)
    for opening, inline in zip(tokens, tokens[1:]):
        if opening.type != "heading_open":
            continue
        text = "".join(child.content for child in inline.children or [] if child.type in ("text", "code_inline"))
        slug = re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")
        candidate, n = slug, 0
        while candidate in anchors:
            n += 1
            candidate = f"{slug}-{n}"
        anchors.add(candidate)
    return anchors


def relative_links(path: Path) -> list[str]:
    """Link and image targets that point inside the repository (code blocks and spans are not links)."""
    targets = []
    for token in _tokens(path):
        for child in token.children or []:
            target = child.attrGet("href") if child.type == "link_open" else (
                child.attrGet("src") if child.type == "image" else None)
            if target and not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
                targets.append(target)
    return targets


def broken_links(path: Path) -> list[str]:
    broken = []
    for target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / unquote(file_part)).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{target} (no file {linked})")
        elif anchor and linked.suffix == ".md" and anchor not in github_anchors(linked):
            broken.append(f"{target} (no heading #{anchor} in {linked.name})")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(REPO)) for p in PAGES])
def test_relative_links_in_the_documentation_resolve(page):
    assert broken_links(page) == []


def test_the_link_checker_sees_a_broken_file_and_a_broken_anchor(tmp_path):
    (tmp_path / "other.md").write_text("# Other page\n\n## The `gbreg` mapping\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](other.md#the-gbreg-mapping) [top](#title) [gone](missing.md) "
                    "[bad anchor](other.md#nowhere) [web](https://example.org/x.md) `[code](nope.md)`\n\n"
                    "# Title\n\n```\n[in a block](nope.md)\n```\n")
    assert broken_links(page) == [f"missing.md (no file {tmp_path / 'missing.md'})",
                                  "other.md#nowhere (no heading #nowhere in other.md)"]


def test_the_readme_points_to_the_linear_counterparts_page():
    assert "docs/linear_counterparts.md" in relative_links(REPO / "README.md")
    assert {"the-mapping", "which-counterpart-runs-where", "what-is-logged"} <= github_anchors(
        REPO / "docs" / "linear_counterparts.md")


def docs_paths_in_source() -> list[tuple[str, str]]:
    """(source file, docs/... path) for every docs/ path gbreg's code and messages mention."""
    found = []
    for source in sorted((REPO / "gbreg").rglob("*.py")):
        for match in re.finditer(r"(?<![\w/])docs/[\w./-]*\w", source.read_text(encoding="utf-8")):
            found.append((str(source.relative_to(REPO)), match.group(0)))
    return found


def test_docs_paths_named_by_the_code_exist():
    found = docs_paths_in_source()
    assert {path for _, path in found} >= {"docs/hypotheses.md", "docs/linear_counterparts.md"}
    missing = [(source, path) for source, path in found if not (REPO / path).exists()]
    assert missing == []


def test_report_links_to_plots_point_at_figures_it_holds():
    """findings.md links plots/<name>.png; in report.html that is #plot-<name>, which must exist: a plot the
    report does not hold keeps its text but loses the link."""
    from gbreg.report.html import _figure, markdown_html

    plots = {"heatmap_test_rmse.png": b"\x89PNG"}
    page = markdown_html("[held](plots/heatmap_test_rmse.png) and [not held](plots/path_reg_alpha_gap_rmse.png)\n",
                     plots) + _figure("heatmap_test_rmse.png", plots["heatmap_test_rmse.png"])
    targets = re.findall(r'href="#([^"]+)"', page)
    ids = set(re.findall(r'id="([^"]+)"', page))
    assert targets == ["plot-heatmap_test_rmse"] and set(targets) <= ids
    assert "not held" in page and "path_reg_alpha_gap_rmse" not in page
