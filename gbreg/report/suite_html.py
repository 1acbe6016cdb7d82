"""``gbreg suite report RUN_ID -o suite.html``: one self-contained page of a suite run, from its artifacts
(suite_results.csv, suite_datasets.csv, suite_findings.md, plots/forest_*.png, suite.yaml), in the same
template as a study's report; logged as ``suite_report.html`` on the suite run."""

from __future__ import annotations

import io
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from markupsafe import Markup

from gbreg.errors import UserInputError
from gbreg.report.html import embedded_plot, markdown_html, page_template, table_cells, write_page
from gbreg.report.suite_findings import format_percent
from gbreg.spec.tracking_config import load_tracking_config
from gbreg.tracking.readback import download_artifact, find_suite_run
from gbreg.tracking.store import open_existing_store
from gbreg.tracking.suite_runs import (
    SUITE_DATASETS_ARTIFACT,
    SUITE_FINDINGS_ARTIFACT,
    SUITE_RESULTS_ARTIFACT,
    SUITE_SPEC_ARTIFACT,
)

SUITE_REPORT_ARTIFACT = "suite_report.html"
TEXT_ARTIFACTS = (SUITE_RESULTS_ARTIFACT, SUITE_DATASETS_ARTIFACT, SUITE_FINDINGS_ARTIFACT, SUITE_SPEC_ARTIFACT)
COMBINED_COLUMNS = ("hypothesis", "claim", "library", "n_supported", "n_contradicted", "n_inconclusive", "effect",
                    "ci_low", "ci_high", "i2", "verdict")


def write_suite_report(run_id: str, output: Path) -> Path:
    client = open_existing_store(load_tracking_config())
    run = find_suite_run(client, run_id)
    texts, plots = _read_artifacts(client, run.info.run_id)
    if SUITE_RESULTS_ARTIFACT not in texts:
        raise UserInputError(f"suite run {run.info.run_id} has no {SUITE_RESULTS_ARTIFACT}: it did not finish "
                             f"(status {run.info.status}); run the suite again to complete it")
    return write_page(render_suite_html(run, texts, plots), Path(output), client, run.info.run_id,
                      SUITE_REPORT_ARTIFACT)


def _read_artifacts(client, run_id: str) -> tuple[dict[str, str], dict[str, bytes]]:
    texts: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="gbreg-suite-report-") as folder:
        for name in TEXT_ARTIFACTS:
            path = download_artifact(client, run_id, name, folder)
            if path is not None:
                texts[name] = path.read_text(encoding="utf-8")
        plots_folder = download_artifact(client, run_id, "plots", folder)
        plots = ({p.name: p.read_bytes() for p in sorted(plots_folder.glob("*.png"))}
                 if plots_folder is not None and plots_folder.is_dir() else {})
    return texts, plots


def render_suite_html(run, texts: dict[str, str], plots: dict[str, bytes]) -> str:
    results = pd.read_csv(io.StringIO(texts[SUITE_RESULTS_ARTIFACT]))
    combined = results[results["dataset"] == "combined"].reindex(columns=list(COMBINED_COLUMNS))
    combined["i2"] = [format_percent(value) for value in combined["i2"]]  # as suite_findings.md shows it
    combined = combined.rename(columns={"i2": "I²"})
    sections = [{"key": "overview", "title": "Overview", "kind": "overview", "rows": _overview(run),
                 "runs_address": ""},
                {"key": "summary", "title": "Each claim across data sets", "kind": "summary",
                 "table": table_cells(combined) if len(combined) else None}]
    if plots:
        sections.append({"key": "forest", "title": "Forest plots", "kind": "plots",
                         "caption": "Per data set: effect and interval, one colour per library, marker by verdict; "
                                    "diamonds: the combined estimate per library.",
                         "figures": [embedded_plot(name, png) for name, png in plots.items()]})
    if SUITE_FINDINGS_ARTIFACT in texts:
        sections.append({"key": "findings", "title": "Findings", "kind": "findings",
                         "html": Markup(markdown_html(texts[SUITE_FINDINGS_ARTIFACT], plots))})
    if SUITE_DATASETS_ARTIFACT in texts:
        sections.append({"key": "datasets", "title": "Data sets", "kind": "summary",
                         "table": table_cells(pd.read_csv(io.StringIO(texts[SUITE_DATASETS_ARTIFACT])))})
    sections.append({"key": "spec", "title": "Suite spec (as run)", "kind": "spec",
                     "text": texts.get(SUITE_SPEC_ARTIFACT, "(suite.yaml not logged)")})
    return page_template().render(study=run.data.tags.get("gbreg.suite", run.info.run_name), run_id=run.info.run_id,
                                  generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), sections=sections,
                                  what="suite")


def _overview(run) -> list[tuple[str, str]]:
    params = run.data.params
    started = datetime.fromtimestamp(run.info.start_time / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = [("Data sets", f"{params.get('n_datasets', '?')}: {params.get('datasets', '')}"),
            ("Libraries", params.get("libraries", "")),
            ("Trials", f"{params.get('n_trials', '?')} over all studies; run status {run.info.status}"),
            ("MLflow", f"suite run {run.info.run_id} (experiment id {run.info.experiment_id}), started {started}")]
    return [(label, str(value)) for label, value in rows if value]
