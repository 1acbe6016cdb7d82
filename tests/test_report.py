"""``gbreg report``: one self-contained HTML file from a real study's parent run, logged back on it."""

from __future__ import annotations

import base64
import io
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import small_spec, study_in_temp_store
from typer.testing import CliRunner

from gbreg.errors import UserInputError
from gbreg.report.html import write_report

FINDINGS = """# Findings

| hypothesis | verdict |
|---|---|
| L1 zeroes leaves | supported |

See the [test heatmap](plots/heatmap_test_rmse.png).

![zero leaves](plots/heatmap_zero_leaf_fraction.png)
"""


class _Page(HTMLParser):
    """Collects what a reader's browser would fetch or show: images, links, section ids, scripts."""

    def __init__(self):
        super().__init__()
        self.images, self.links, self.ids, self.external = [], [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.append(attrs["id"])
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "a":
            self.links.append(attrs.get("href", ""))
        if tag in ("script", "link", "iframe") or (tag == "img" and not attrs["src"].startswith("data:")):
            self.external.append(tag)


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A real study (both boosters, 2 x 2 grid, 20 rounds) in a temp store; yields (outcome, client, folder)."""
    yield from study_in_temp_store(tmp_path_factory.mktemp("report-study"), small_spec(name="report-study", sweep={"reg_alpha": [0, 10], "reg_lambda": [0, 10]}))


def test_report_is_one_self_contained_file_with_every_plot_and_the_best_points(study, tmp_path):
    from PIL import Image

    from gbreg.report.summary import format_cell
    from gbreg.tracking.run_table import numeric_columns

    outcome, client, _ = study
    path = write_report(outcome.parent_run_id, tmp_path / "out" / "study.html")
    text = path.read_text(encoding="utf-8")
    page = _parse(text)
    assert page.external == []  # nothing fetched at view time
    plots = sorted(a.path for a in client.list_artifacts(outcome.parent_run_id, "plots"))
    assert len(plots) >= 9 and len(page.images) == len(plots)
    for artifact in plots:
        assert f"plot-{artifact.removeprefix('plots/').removesuffix('.png')}" in page.ids
    png = base64.b64decode(page.images[0].removeprefix("data:image/png;base64,"))
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.size[0] >= 800
    results = numeric_columns(outcome.results)
    for model in ("xgboost", "lightgbm"):
        best = results[results["model"] == model]["test_rmse"].min()
        assert f">{format_cell(best)}<" in text  # the summary table shows each model's best score
    assert "name: report-study" in text  # the spec as run
    assert f"#/experiments/{outcome.experiment_id}/runs?workflowType=machine_learning" in text
    assert set(page.ids) >= {"overview", "summary", "heatmap", "path", "learning_curves", "leaf_histograms",
                             "spec", "trials"}
    # the same file is logged on the parent run as report.html
    logged = client.download_artifacts(outcome.parent_run_id, "report.html", str(tmp_path))
    assert Path(logged).read_text(encoding="utf-8") == text


def test_findings_and_comparison_are_included_with_links_to_the_embedded_plots(study, tmp_path):
    outcome, client, _ = study
    client.log_text(outcome.parent_run_id, FINDINGS, "findings.md")
    client.log_text(outcome.parent_run_id, "model,counterpart,test_rmse\nxgboost,lasso,53.25\n", "comparison.csv")
    text = write_report(outcome.parent_run_id, tmp_path / "report.html").read_text(encoding="utf-8")
    page = _parse(text)
    assert {"findings", "linear"} <= set(page.ids)
    assert "<td>L1 zeroes leaves</td>" in text and ">53.25<" in text
    assert "#plot-heatmap_test_rmse" in page.links  # the markdown link now points inside the page
    assert not any(src.startswith("plots/") for src in page.images)  # the markdown image is embedded


def test_a_study_name_or_a_trial_run_id_finds_the_parent(study, tmp_path):
    outcome, _, _ = study
    by_name = write_report("report-study", tmp_path / "a.html").read_text(encoding="utf-8")
    assert outcome.parent_run_id in by_name
    child = outcome.results["run_id"].iloc[0]
    said: list[str] = []
    by_child = write_report(child, tmp_path / "b.html", announce=said.append).read_text(encoding="utf-8")
    assert f"parent run <code>{outcome.parent_run_id}</code>" in by_child
    assert said == [f"{child!r} stands for study 'report-study': the report is of its run {outcome.parent_run_id}"]
    said.clear()
    write_report(outcome.parent_run_id, tmp_path / "c.html", announce=said.append)
    assert said == []  # the study's own run needs no word


def test_unknown_run_is_a_one_line_error_with_exit_status_2(study, tmp_path):
    from gbreg.cli import app

    with pytest.raises(UserInputError, match="no study or run 'no-such-study'"):
        write_report("no-such-study", tmp_path / "r.html")
    result = CliRunner().invoke(app, ["report", "no-such-study", "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 2
    assert result.output.strip().startswith("error: no study or run 'no-such-study'")
    assert not (tmp_path / "r.html").exists()


def test_cli_writes_the_report(study, tmp_path):
    from gbreg.cli import app

    outcome, _, _ = study
    result = CliRunner().invoke(app, ["report", outcome.parent_run_id, "-o", str(tmp_path / "cli.html")])
    assert result.exit_code == 0, result.output
    assert f"wrote {tmp_path / 'cli.html'}" in result.output
    assert re.search(r"<h1>report-study</h1>", (tmp_path / "cli.html").read_text(encoding="utf-8"))


def test_a_study_without_logged_plots_gets_them_drawn_for_the_report(study, tmp_path):
    outcome, _, folder = study
    plots_dir = next((folder / "mlartifacts").glob(f"**/{outcome.parent_run_id}/artifacts/plots"))
    saved = tmp_path / "saved-plots"
    shutil.move(plots_dir, saved)  # as if the study ran before plots existed
    try:
        text = write_report(outcome.parent_run_id, tmp_path / "r.html").read_text(encoding="utf-8")
    finally:
        shutil.move(saved, plots_dir)
    page = _parse(text)
    assert len(page.images) >= 9
    assert "figures drawn for this report" in text
