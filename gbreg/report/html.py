"""``gbreg report RUN_ID -o report.html``: one self-contained HTML report of a study (issue 7).

Everything comes from the parent run's artifacts (spec.yaml, results.csv, plots/*.png, comparison.csv,
findings.md), so a report can be written for any finished study, later, on another machine with the
same store. Images are embedded as base64 data URIs: the file opens anywhere, and the copy logged as
``report.html`` on the parent run opens from the MLflow UI.

A study logged before plots existed (or whose plot step failed) gets its figures drawn here from the
results; they are embedded, not logged.
"""

from __future__ import annotations

import base64
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pandas as pd
from markupsafe import Markup

from gbreg.errors import UserInputError
from gbreg.report.plots import PlotContext, draw_study_plots
from gbreg.report.summary import best_per_model, format_cell, runs_table_address
from gbreg.spec.tracking_config import load_tracking_config
from gbreg.tracking.readback import (
    download_artifact,
    find_parent_run,
    study_parent,
    study_results,
    summary_table,
)
from gbreg.tracking.run_table import numeric_columns
from gbreg.tracking.store import open_existing_store, retrying
from gbreg.tracking.tracker import TAG_STUDY

REPORT_ARTIFACT = "report.html"
OPTIONAL_ARTIFACTS = ("spec.yaml", "results.csv", "comparison.csv", "findings.md")
PLOT_SECTIONS = (  # (title, file-name prefix, what the reader should look for)
    ("Heatmaps over the penalty grid", "heatmap_",
     "One panel per model on one colour scale; the red box marks the best test score."),
    ("Regularization paths", "path_",
     ("Each statistic against one penalty, one line per value of the other; bands are ±1 sd over "
     "repeats/folds when there is more than one split.")),
    ("Learning curves", "learning_curves",
     "Train (dashed) and test (solid) metric per boosting round at representative grid points."),
    ("Leaf-value histograms", "leaf_histograms",
     "Leaf values at the same points; the diamond counts leaves that are exactly 0."),
)


@dataclass
class StudyArtifacts:
    """What a report shows, read from one parent run."""

    parent: object  # mlflow.entities.Run
    experiment_name: str
    texts: dict[str, str] = field(default_factory=dict)  # spec.yaml, findings.md, ...
    results: pd.DataFrame = field(default_factory=pd.DataFrame)
    comparison: pd.DataFrame | None = None
    plots: dict[str, bytes] = field(default_factory=dict)  # file name -> PNG bytes, in drawing order
    plots_drawn_here: bool = False


def write_report(run_id: str, output: Path, announce=None) -> Path:
    """Write the report of a study (parent run id, any of its trials' run ids, or a study name) to
    ``output`` and log it as ``report.html`` on the parent run. Returns ``output``. ``announce`` (a
    callable taking a line) is told which study's run the report is of when ``run_id`` is not that run's
    id: a trial's report is its study's."""

    config = load_tracking_config()
    client = open_existing_store(config)  # a report reads a study: never create an empty store
    parent = study_parent(client, find_parent_run(client, run_id), run_id)
    if announce is not None and parent.info.run_id != run_id:
        study = parent.data.tags.get(TAG_STUDY, parent.info.run_name)
        announce(f"{run_id!r} stands for study {study!r}: the report is of its run {parent.info.run_id}")
    artifacts = read_artifacts(client, parent)

    page = render_html(artifacts, runs_table_address(parent.info.experiment_id, config))
    return write_page(page, Path(output), client, parent.info.run_id, REPORT_ARTIFACT)


def write_page(page: str, output: Path, client, run_id: str, artifact: str) -> Path:
    """The page written to ``output`` and logged as ``artifact`` on the run (it opens from the UI)."""
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise UserInputError(f"{output}: cannot write the report: {exc.strerror or exc}") from exc
    with tempfile.TemporaryDirectory(prefix="gbreg-report-") as folder:
        logged = Path(folder) / artifact
        shutil.copyfile(output, logged)
        retrying(lambda: client.log_artifact(run_id, str(logged)))
    return output


def read_artifacts(client, parent) -> StudyArtifacts:
    run_id = parent.info.run_id
    experiment = client.get_experiment(parent.info.experiment_id)
    artifacts = StudyArtifacts(parent, experiment.name if experiment else parent.info.experiment_id)
    with tempfile.TemporaryDirectory(prefix="gbreg-report-") as folder:
        for name in OPTIONAL_ARTIFACTS:
            path = download_artifact(client, run_id, name, folder)
            if path is not None:
                artifacts.texts[name] = path.read_text(encoding="utf-8")
        plots_folder = download_artifact(client, run_id, "plots", folder)
        if plots_folder is not None and plots_folder.is_dir():
            artifacts.plots = {p.name: p.read_bytes() for p in sorted(plots_folder.glob("*.png"))}
    artifacts.results = (pd.read_csv(_string_io(artifacts.texts["results.csv"])) if "results.csv" in artifacts.texts
                         else study_results(client, parent))
    if "comparison.csv" in artifacts.texts:
        artifacts.comparison = pd.read_csv(_string_io(artifacts.texts["comparison.csv"]))
    if not artifacts.plots and len(artifacts.results):
        artifacts.plots = _draw_plots(client, parent, artifacts.results)
        artifacts.plots_drawn_here = bool(artifacts.plots)
    return artifacts


def _string_io(text: str):
    import io

    return io.StringIO(text)


def _draw_plots(client, parent, results: pd.DataFrame) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory(prefix="gbreg-report-plots-") as folder:
        paths = draw_study_plots(results, PlotContext.from_parent_params(parent.data.params), client, Path(folder))
        return {p.name: p.read_bytes() for p in paths}


# ---------------------------------------------------------------------------------------------- HTML


def render_html(artifacts: StudyArtifacts, runs_address: str) -> str:
    """The whole page as one string (templates/report.html.j2): inline CSS, images as data URIs."""
    parent = artifacts.parent
    sections = [
        {"key": "overview", "title": "Overview", "kind": "overview", "rows": _overview_rows(artifacts),
         "runs_address": runs_address},
        {"key": "summary", "title": "Best grid point per model", "kind": "summary", "table": _summary(artifacts)},
        *_plot_sections(artifacts.plots, exclude_linear=True),
    ]
    linear = _linear_section(artifacts)
    if linear["table"] or linear["figures"]:
        sections.append(linear)
    if "findings.md" in artifacts.texts:
        sections.append({"key": "findings", "title": "Findings", "kind": "findings",
                         "html": Markup(markdown_html(artifacts.texts["findings.md"], artifacts.plots))})
    sections.append({"key": "spec", "title": "Study spec (as run)", "kind": "spec",
                     "text": artifacts.texts.get("spec.yaml", "(spec.yaml not logged)")})
    sections.append(_trials(artifacts))
    return page_template().render(
        study=parent.data.tags.get("gbreg.study", parent.info.run_name), run_id=parent.info.run_id,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), sections=sections)


@cache
def page_template():
    from jinja2 import Environment, PackageLoader

    environment = Environment(loader=PackageLoader("gbreg.report", "templates"), autoescape=True, trim_blocks=True,
                              lstrip_blocks=True, keep_trailing_newline=True)
    return environment.get_template("report.html.j2")


def _overview_rows(artifacts: StudyArtifacts) -> list[tuple[str, str]]:
    parent = artifacts.parent
    params, tags = parent.data.params, parent.data.tags
    started = datetime.fromtimestamp(parent.info.start_time / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
    description = _spec_field(artifacts.texts.get("spec.yaml", ""), "description")
    sweep = "; ".join(f"{k.removeprefix('sweep.')} = {v}" for k, v in params.items() if k.startswith("sweep."))
    data = ", ".join(f"{k.removeprefix('data.')}={v}" for k, v in params.items() if k.startswith("data."))
    rows = [
        ("Description", description),
        ("Data", (f"{data} ({params.get('n_rows', '?')} rows × {params.get('n_features', '?')} features), "
                 f"task {params.get('task', '?')}")),
        ("Evaluation", (f"{params.get('evaluation.split', '?')}, metric {params.get('metric', '?')}, "
                       f"seed {params.get('seed', '?')}, repeats {params.get('repeats', '1')}")),
        ("Models", f"{params.get('libraries', '')}" + (f"; counterparts {params['counterparts']}"
                                                       if params.get("counterparts") else "")),
        ("Sweep", sweep),
        ("Trials", (f"{params.get('n_trials', len(artifacts.results))} planned, "
                   f"{int(parent.data.metrics.get('n_failed', 0))} failed; run status {parent.info.status}")),
        ("MLflow", (f"experiment {artifacts.experiment_name!r} (id {parent.info.experiment_id}), "
                   f"parent run {parent.info.run_id}, started {started}")),
        ("Versions", ", ".join(f"{k.removeprefix('gbreg.version.')} {v}" for k, v in sorted(tags.items())
                               if k.startswith("gbreg.version."))),
    ]
    return [(label, str(value)) for label, value in rows if value]


def _spec_field(spec_yaml: str, key: str) -> str:
    import yaml

    try:
        spec = yaml.safe_load(spec_yaml) or {}
    except yaml.YAMLError:
        return ""
    return str(spec.get(key, "") or "") if isinstance(spec, dict) else ""


def _summary(artifacts: StudyArtifacts) -> dict | None:
    params = artifacts.parent.data.params
    metric = params.get("metric", "rmse")
    axes = tuple(k.removeprefix("sweep.") for k in params if k.startswith("sweep.")) or ("reg_alpha", "reg_lambda")
    best = best_per_model(artifacts.results, metric, axes)
    return table_cells(best) if len(best) else None


def _plot_sections(plots: dict[str, bytes], exclude_linear: bool) -> list[dict]:
    sections = []
    for title, prefix, caption in PLOT_SECTIONS:
        names = [n for n in plots if n.startswith(prefix) and not (exclude_linear and n.endswith("_vs_linear.png"))]
        if names:
            sections.append({"key": prefix.rstrip("_"), "title": title, "kind": "plots", "caption": caption,
                             "figures": [embedded_plot(name, plots[name]) for name in names]})
    return sections


def embedded_plot(name: str, png: bytes) -> dict[str, str]:
    return {"name": name, "stem": name.removesuffix(".png"), "uri": _data_uri(png)}


def _figure(name: str, png: bytes) -> str:
    """One figure's HTML, as the page shows it."""
    return str(page_template().module.figure(embedded_plot(name, png)))


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _linear_section(artifacts: StudyArtifacts) -> dict:
    table = table_cells(artifacts.comparison) if artifacts.comparison is not None and len(artifacts.comparison) else None
    figures = [embedded_plot(name, png) for name, png in artifacts.plots.items() if name.endswith("_vs_linear.png")]
    return {"key": "linear", "title": "Boosters vs linear counterparts", "kind": "linear", "table": table,
            "figures": figures}


def markdown_html(text: str, plots: dict[str, bytes]) -> str:
    """findings.md as HTML; its links to ``plots/<name>.png`` point at the embedded figures instead."""
    from markdown_it import MarkdownIt

    rendered = MarkdownIt("commonmark", {"html": False}).enable("table").render(text)

    def image(match: re.Match) -> str:
        name = match.group(1)
        return f'src="{_data_uri(plots[name])}"' if name in plots else match.group(0)

    def plot_link(match: re.Match) -> str:  # a link to a figure the page does not hold would lead nowhere
        name = match.group(1)
        return f'<a href="#plot-{name}">' if f"{name}.png" in plots else "<a>"

    rendered = re.sub(r'src="plots/([^"/]+\.png)"', image, rendered)
    return re.sub(r'<a href="plots/([^"/]+)\.png">', plot_link, rendered)


def _trials(artifacts: StudyArtifacts) -> dict:
    section = {"key": "trials", "title": "All trials", "kind": "trials", "table": None}
    results = artifacts.results
    if not len(results):
        return section
    metric = artifacts.parent.data.params.get("metric", "rmse")
    shown = summary_table(results, metric)
    if "status" in results and (results["status"] != "FINISHED").any():
        shown = shown.assign(status=results["status"])
    note = " (figures drawn for this report: the run has no plots/ artifacts)" if artifacts.plots_drawn_here else ""
    return section | {"count": len(results), "note": note, "table": table_cells(shown)}


def table_cells(frame: pd.DataFrame) -> dict:
    """Column names, which columns are numeric (right-aligned), and every cell as the summary shows it."""

    frame = numeric_columns(frame)
    return {"columns": [str(c) for c in frame.columns],
            "numeric": [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns],
            "rows": [[format_cell(v) for v in row] for row in frame.itertuples(index=False)]}
