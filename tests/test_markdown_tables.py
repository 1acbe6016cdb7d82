"""The verdict tables of findings.md (built with ``DataFrame.to_markdown``) render as plain markdown
tables: every cell as formatted, no number re-parsing, no alignment markers."""

from __future__ import annotations

import pandas as pd
from markdown_it import MarkdownIt

from gbreg.analysis.judgement import _sign_table


def _cells(markdown: str) -> list[list[str]]:
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    rows, row = [], None
    for token in tokens:
        if token.type == "tr_open":
            row = []
        elif token.type in ("th_open", "td_open"):
            assert not token.attrs.get("style")  # no column alignment, as the hand-written tables had
        elif token.type == "inline" and row is not None:
            row.append(token.content)
        elif token.type == "tr_close":
            rows.append(row)
            row = None
    return rows


def test_sign_table_renders_every_configuration_with_its_formatted_numbers():
    data = pd.DataFrame({"_config": ["model=xgboost"] * 3 + [f"model=m{i}" for i in range(41)],
                         "gap": [0.5, 1.0, 1e-05] + [-2.0] * 41})
    text = _sign_table(data, ["model"], "gap")
    assert text.startswith("gap by configuration:\n\n")
    rows = _cells(text)
    assert rows[0] == ["model", "mean", "min", "max", "cells", "sign of mean"]
    assert rows[1] == ["model=xgboost", "0.5", "1e-05", "1", "3", "+"]
    assert rows[2] == ["model=m0", "-2", "-2", "-2", "1", "−"]
    assert len(rows) == 1 + 40 + 1 and rows[-1] == ["… 2 more", "", "", "", "", ""]
