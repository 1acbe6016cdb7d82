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
import html
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from gbreg.errors import UserInputError

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


def write_report(run_id: str, output: Path) -> Path:
    """Write the report of a study (parent run id, any of its trials' run ids, or a study name) to
    ``output`` and log it as ``report.html`` on the parent run. Returns ``output``."""
    from gbreg.config import load_tracking_config
    from gbreg.results import find_parent_run
    from gbreg.store import open_existing_store, retrying

    config = load_tracking_config()
    client = open_existing_store(config)  # a report reads a study: never create an empty store
    parent = study_parent(client, find_parent_run(client, run_id), run_id)
    artifacts = read_artifacts(client, parent)
    from gbreg.summary import runs_table_address

    page = render_html(artifacts, runs_table_address(parent.info.experiment_id, config))
    output = Path(output)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise UserInputError(f"{output}: cannot write the report: {exc.strerror or exc}") from exc
    with tempfile.TemporaryDirectory(prefix="gbreg-report-") as folder:
        logged = Path(folder) / REPORT_ARTIFACT
        shutil.copyfile(output, logged)
        retrying(lambda: client.log_artifact(parent.info.run_id, str(logged)))
    return output


def study_parent(client, run, asked: str):
    """The study's parent run: ``run`` itself, or the parent of a trial's run."""
    from gbreg.track import TAG_KIND, TAG_PARENT

    kind = run.data.tags.get(TAG_KIND)
    if kind == "study":
        return run
    parent_id = run.data.tags.get(TAG_PARENT)
    if kind in ("booster", "linear") and parent_id:
        return client.get_run(parent_id)
    raise UserInputError(f"run {asked!r} is not a gbreg study (no {TAG_KIND} tag); give a study's parent run "
                         "id or its name")


def read_artifacts(client, parent) -> StudyArtifacts:
    from gbreg.results import study_results

    run_id = parent.info.run_id
    experiment = client.get_experiment(parent.info.experiment_id)
    artifacts = StudyArtifacts(parent, experiment.name if experiment else parent.info.experiment_id)
    with tempfile.TemporaryDirectory(prefix="gbreg-report-") as folder:
        for name in OPTIONAL_ARTIFACTS:
            path = _download(client, run_id, name, folder)
            if path is not None:
                artifacts.texts[name] = path.read_text(encoding="utf-8")
        plots_folder = _download(client, run_id, "plots", folder)
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


def _download(client, run_id: str, path: str, folder: str) -> Path | None:
    from gbreg.store import retrying

    try:
        local = Path(retrying(lambda: client.download_artifacts(run_id, path, folder)))
    except Exception:  # noqa: BLE001 - an artifact the study did not produce is simply not in the report
        return None
    return local if local.exists() else None


def _string_io(text: str):
    import io

    return io.StringIO(text)


def _draw_plots(client, parent, results: pd.DataFrame) -> dict[str, bytes]:
    from gbreg.plots import PlotContext, draw_study_plots

    with tempfile.TemporaryDirectory(prefix="gbreg-report-plots-") as folder:
        paths = draw_study_plots(results, PlotContext.from_parent_params(parent.data.params), client, Path(folder))
        return {p.name: p.read_bytes() for p in paths}


# ---------------------------------------------------------------------------------------------- HTML


def render_html(artifacts: StudyArtifacts, runs_address: str) -> str:
    """The whole page as one string: inline CSS, images as data URIs, nothing fetched at view time."""
    parent = artifacts.parent
    study = parent.data.tags.get("gbreg.study", parent.info.run_name)
    sections = [
        ("overview", "Overview", _overview(artifacts, runs_address)),
        ("summary", "Best grid point per model", _summary(artifacts)),
        *_plot_sections(artifacts.plots, exclude_linear=True),
    ]
    linear = _linear_section(artifacts)
    if linear:
        sections.append(("linear", "Boosters vs linear counterparts", linear))
    if "findings.md" in artifacts.texts:
        sections.append(("findings", "Findings", _markdown(artifacts.texts["findings.md"], artifacts.plots)))
    sections.append(("spec", "Study spec (as run)", _pre(artifacts.texts.get("spec.yaml", "(spec.yaml not logged)"))))
    sections.append(("trials", "All trials", _trials(artifacts)))
    toc = "".join(f'<li><a href="#{key}">{html.escape(title)}</a></li>' for key, title, _ in sections)
    body = "".join(f'<section id="{key}"><h2>{html.escape(title)}</h2>{content}</section>'
                   for key, title, content in sections)
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>gbreg report: {html.escape(study)}</title><style>{CSS}</style></head><body>"
            f"<header><h1>{html.escape(study)}</h1><p class=\"muted\">gbreg study report · parent run "
            f"<code>{parent.info.run_id}</code> · generated {generated}</p><nav><ol>{toc}</ol></nav></header>"
            f"{body}</body></html>\n")


def _overview(artifacts: StudyArtifacts, runs_address: str) -> str:
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
    table = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows if v)
    link = (f'<p>Runs table in the MLflow UI (start it with <code>gbreg ui</code>): '
            f'<a href="{html.escape(runs_address)}">{html.escape(runs_address)}</a></p>')
    return f'<table class="kv">{table}</table>{link}'


def _spec_field(spec_yaml: str, key: str) -> str:
    import yaml

    try:
        spec = yaml.safe_load(spec_yaml) or {}
    except yaml.YAMLError:
        return ""
    return str(spec.get(key, "") or "") if isinstance(spec, dict) else ""


def _summary(artifacts: StudyArtifacts) -> str:
    from gbreg.summary import best_per_model

    params = artifacts.parent.data.params
    metric = params.get("metric", "rmse")
    axes = tuple(k.removeprefix("sweep.") for k in params if k.startswith("sweep.")) or ("reg_alpha", "reg_lambda")
    best = best_per_model(artifacts.results, metric, axes)
    if not len(best):
        return '<p class="muted">No finished trials.</p>'
    return _table(best)


def _plot_sections(plots: dict[str, bytes], exclude_linear: bool) -> list[tuple[str, str, str]]:
    sections = []
    for title, prefix, caption in PLOT_SECTIONS:
        names = [n for n in plots if n.startswith(prefix) and not (exclude_linear and n.endswith("_vs_linear.png"))]
        if names:
            figures = "".join(_figure(name, plots[name]) for name in names)
            sections.append((prefix.rstrip("_"), title, f'<p class="muted">{html.escape(caption)}</p>{figures}'))
    return sections


def _figure(name: str, png: bytes) -> str:
    stem = name.removesuffix(".png")
    return (f'<figure id="plot-{html.escape(stem)}"><img alt="{html.escape(stem)}" src="{_data_uri(png)}">'
            f'<figcaption>plots/{html.escape(name)}</figcaption></figure>')


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _linear_section(artifacts: StudyArtifacts) -> str:
    parts = [_figure(name, png) for name, png in artifacts.plots.items() if name.endswith("_vs_linear.png")]
    if artifacts.comparison is not None and len(artifacts.comparison):
        parts.insert(0, _table(artifacts.comparison))
    return "".join(parts)


def _markdown(text: str, plots: dict[str, bytes]) -> str:
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


def _trials(artifacts: StudyArtifacts) -> str:
    from gbreg.results import summary_table

    results = artifacts.results
    if not len(results):
        return '<p class="muted">No trials.</p>'
    metric = artifacts.parent.data.params.get("metric", "rmse")
    shown = summary_table(results, metric)
    if "status" in results and (results["status"] != "FINISHED").any():
        shown = shown.assign(status=results["status"])
    note = " (figures drawn for this report: the run has no plots/ artifacts)" if artifacts.plots_drawn_here else ""
    return (f"<details><summary>{len(results)} trials{html.escape(note)}</summary>{_table(shown)}</details>")


def _table(frame: pd.DataFrame) -> str:
    from gbreg.plots._data import numeric_columns
    from gbreg.summary import format_cell

    frame = numeric_columns(frame)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    rows = "".join("<tr>" + "".join(f'<td class="{"num" if is_num else ""}">{html.escape(format_cell(v))}</td>'
                                    for v, is_num in zip(row, numeric)) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f'<div class="scroll"><table class="data"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>'


def _pre(text: str) -> str:
    return f"<pre>{html.escape(text)}</pre>"


CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
.muted{color:#666}code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em}
pre{background:#f6f8fa;padding:1em;overflow:auto;border-radius:4px}
nav ol{columns:2;padding-left:1.2em}
table{border-collapse:collapse;font-size:.9em}th,td{padding:.3em .6em;border-bottom:1px solid #eee;text-align:left}
table.data th{background:#f6f8fa;position:sticky;top:0}td.num{text-align:right;font-variant-numeric:tabular-nums}
table.kv th{width:9em;vertical-align:top;color:#555}.scroll{overflow-x:auto;max-height:40em}
figure{margin:1.5em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#666;font-size:.85em}details summary{cursor:pointer;margin:.5em 0}
"""
