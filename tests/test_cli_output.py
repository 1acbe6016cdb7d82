"""What the CLI prints and records for a user: tables that fit the terminal with every number whole,
``gbreg results`` choosing the original study over a reproduction (and ``--run``), UTF-8 in what is
logged, and why a resumed study starts a new parent run after its data changed."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from gbreg.cli import app
from gbreg.report.summary import fit_table, format_cell

RUN_ID = "0a0768d972534181b4fb7d3470694bc9"


def _results(n: int = 6) -> pd.DataFrame:
    """A results-like table: the columns `gbreg results` shows, with long-digit numbers."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"model": ["xgboost", "lightgbm"] * (n // 2), "reg_alpha": [0.0, 1.0, 100.0] * (n // 3),
                          "reg_lambda": [0.0, 10.0] * (n // 2)})
    for column in ("test_rmse", "train_rmse", "gap_rmse", "n_leaves", "leaves_per_tree", "zero_leaf_fraction",
                   "leaf_abs_mean", "n_features_used", "fit_seconds"):
        frame[column] = rng.uniform(0.001, 21000, n)
    frame["run_id"] = RUN_ID
    return frame


def _printed(table, width: int) -> str:
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(table)
    return console.export_text()


@pytest.mark.parametrize("width", [80, 100, 120])
def test_tables_fit_the_terminal_with_every_number_whole(width):
    frame = _results()
    table, left_out = fit_table(frame, "small (parent run)", width, keep=4)
    text = _printed(table, width)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width
    shown = [c for c in frame.columns if c not in left_out]
    assert shown[:4] == ["model", "reg_alpha", "reg_lambda", "test_rmse"] and left_out
    for column in shown:
        for value in frame[column]:
            if column != "run_id":
                assert format_cell(value) in text, (column, value)
    if "run_id" in shown:
        assert RUN_ID[:8] in text and RUN_ID not in text
    assert left_out == [c for c in frame.columns if c not in shown]  # dropped from the right


def test_every_column_when_asked_and_run_ids_always_short():
    frame = _results()
    table, left_out = fit_table(frame, "all", None)
    assert left_out == []
    text = _printed(table, 400)
    assert RUN_ID[:8] in text and RUN_ID not in text and "…" not in text


# ----------------------------------------------------------------------------------------------------
# a real study: a data file with non-ASCII names


def _write_study(folder: Path) -> Path:
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True).frame.rename(columns={"age": "âge", "target": "y"})
    frame.to_csv(folder / "données.csv", index=False)
    spec = {"name": "utf8", "description": "étude à deux pénalités", "seed": 0,
            "data": {"source": "file", "path": "données.csv", "target": "y"},
            "models": {"xgboost": {"n_estimators": 5, "max_depth": 2}}, "sweep": {"reg_alpha": [0, 10]}}
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def study(tracking, tmp_path):
    """One finished study in a fresh store: (spec path, client, parent run)."""
    from mlflow.tracking import MlflowClient

    path = _write_study(tmp_path)
    result = CliRunner().invoke(app, ["run", str(path), "-q", "-j", "1"])
    assert result.exit_code == 0, result.output
    client = MlflowClient(tracking.tracking_uri)
    (parent,) = client.search_runs([client.get_experiment_by_name("utf8").experiment_id],
                                   "tags.`gbreg.kind` = 'study'")
    return path, client, parent


@pytest.mark.slow
def test_results_prefers_the_original_over_a_later_reproduction(study):
    path, client, original = study
    rerun = CliRunner().invoke(app, ["reproduce", original.info.run_id, "-j", "1"])
    assert rerun.exit_code == 0, rerun.output
    reproduction = re.search(r"rerun ([0-9a-f]{32})", rerun.output).group(1)
    assert client.get_run(reproduction).data.tags["gbreg.reproduces"] == original.info.run_id

    latest = CliRunner().invoke(app, ["results", "utf8"])
    assert latest.exit_code == 0 and f"({original.info.run_id})" in latest.stdout
    chosen = CliRunner().invoke(app, ["results", "utf8", "--run", reproduction])
    assert chosen.exit_code == 0 and f"({reproduction})" in chosen.stdout
    wrong = CliRunner().invoke(app, ["results", "other", "--run", reproduction])
    assert wrong.exit_code == 2
    assert wrong.stderr.strip() == f"error: --run {reproduction}: that run belongs to study 'utf8', not 'other'"
    unknown = CliRunner().invoke(app, ["results", "utf8", "--run", "f" * 32])
    assert unknown.exit_code == 2 and f"--run {'f' * 32}: no such run in the tracking store" in unknown.stderr


@pytest.mark.slow
def test_spec_and_features_used_are_logged_as_utf8(study, tmp_path):
    _, client, parent = study
    for name in ("spec.yaml", "spec_input.yaml"):
        text = Path(client.download_artifacts(parent.info.run_id, name, str(tmp_path))).read_text(encoding="utf-8")
        assert "étude à deux pénalités" in text and "données.csv" in text and "\\x" not in text, text
    trials = client.search_runs([parent.info.experiment_id], "tags.`gbreg.kind` = 'booster'")
    used = [run.data.params["features_used"] for run in trials]
    assert all("âge" in value and "\\u" not in value for value in used), used


@pytest.mark.slow
def test_resuming_after_the_data_changed_says_why_it_starts_a_new_parent(study):
    path, client, parent = study
    data = path.parent / "données.csv"
    frame = pd.read_csv(data)
    frame.loc[0, "bmi"] += 0.5
    frame.to_csv(data, index=False)
    result = CliRunner().invoke(app, ["run", str(path), "-j", "1"])
    assert result.exit_code == 0, result.output
    old = parent.data.tags["gbreg.data_sha256"]
    assert re.search(rf"the data changed since run {parent.info.run_id} \(data sha256 {old[:12]}… now "
                     r"[0-9a-f]{12}…\): starting a new parent run", result.stderr), result.stderr


def test_results_all_prints_every_column_whole_however_wide(study):
    # rich squeezed most of the ~70 columns to nothing to fit 220 characters: no header, no value
    csv = CliRunner().invoke(app, ["results", "utf8", "--all", "--format", "csv"])
    assert csv.exit_code == 0, csv.output
    columns = csv.stdout.splitlines()[0].split(",")
    table = CliRunner().invoke(app, ["results", "utf8", "--all"])
    assert table.exit_code == 0, table.output
    header = next(line for line in table.stdout.splitlines() if "run_name" in line)
    assert len(columns) > 40 and len(header) > 220
    assert [c for c in columns if f" {c} " not in header] == []
