"""After the sweep: the shrinkage columns and metrics, and the hypotheses' verdicts on the parent run
(findings.md, metrics and tags)."""

from __future__ import annotations

import math

from gbreg.analysis.judgement import evaluate_hypotheses
from gbreg.analysis.shrinkage import shrinkage_table
from gbreg.analysis.verdicts import Verdict, effect_with_interval, format_number
from gbreg.errors import UserInputError
from gbreg.models.trial import FOLDS_ARTIFACT
from gbreg.spec.hypotheses import FINDINGS_ARTIFACT, POST_SWEEP_METRICS, VERDICT_CODES, Hypothesis
from gbreg.spec.messages import counted
from gbreg.spec.schema import PENALTY_AXES
from gbreg.tracking.run_table import numeric_columns
from gbreg.tracking.store import retrying


def add_shrinkage_columns(tracker, prepared, outcome) -> list[str]:
    """Fill in the shrinkage columns of ``outcome.results`` where a trial has no value: every trial of a
    fresh run; on a resumed run the trials run this time (the earlier ones bring theirs from the store)
    and an earlier trial that had no reference then. The values filled in are kept in
    ``outcome.shrinkage_to_log`` for :func:`log_shrinkage_metrics`. Returns the models that have no
    reg_alpha = reg_lambda = 0 trial: no reference, so no shrinkage."""

    results = outcome.results
    other_axes = [axis for axis in prepared.spec.sweep_values() if axis not in PENALTY_AXES]
    table, missing = shrinkage_table(numeric_columns(results), other_axes)
    run_ids = results["run_id"] if "run_id" in results.columns else None
    for column in table.columns:
        had = results[column] if column in results.columns else None
        new = table[column].notna() if had is None else table[column].notna() & had.isna()
        results[column] = table[column] if had is None else had.where(~new, table[column])
        for position in (new.to_numpy().nonzero()[0] if run_ids is not None else ()):
            run_id = run_ids.iloc[position]
            outcome.shrinkage_to_log.setdefault(run_id, {})[column] = float(table[column].iloc[position])
    return missing


def log_shrinkage_metrics(tracker, prepared, outcome) -> None:
    """Log the shrinkage values :func:`add_shrinkage_columns` filled in, each on its trial's run (once:
    a value already in the store is not logged again)."""
    pending, outcome.shrinkage_to_log = outcome.shrinkage_to_log, {}
    tracker.add_trial_metrics(pending)


def log_findings(tracker, prepared, outcome) -> None:
    """Test each hypothesis on the results; log findings.md and verdicts on the parent run."""
    results = outcome.results
    if results is None or not len(results):
        return
    missing = add_shrinkage_columns(tracker, prepared, outcome)
    spec = prepared.spec
    if not spec.expect:
        return
    hypotheses = [Hypothesis.model_validate(raw) for raw in spec.expect]
    results = numeric_columns(outcome.results)
    splits = numeric_columns(split_table(tracker.client, results, getattr(outcome, "folds", None)))
    verdicts = evaluate_hypotheses(hypotheses, results, splits, list(spec.sweep_values()), seed=spec.seed)
    plots = _plot_artifacts(tracker.client, tracker.parent_run_id)
    text = findings_markdown(prepared, results, splits, verdicts, plots, missing)
    tracker.log_text(tracker.parent_run_id, text, FINDINGS_ARTIFACT)
    metrics, tags = verdict_metrics(verdicts)
    tracker.log_child_metrics(tracker.parent_run_id, metrics, tags)


def split_table(client, results, folds=None):
    """One row per (trial, split): the trial's parameters with that split's metrics.

    Uses ``folds`` (a per-split table with a ``run_id`` column: the runner's, of the trials it ran) and
    reads each other child's ``folds.csv`` (present when a study has more than one split): those of
    trials an earlier, interrupted run finished, or all of them for a study read back. One split: the
    results table itself, with repeat = fold = 0.
    """
    import os
    import tempfile
    from pathlib import Path

    import pandas as pd


    if not any(column.endswith("_std") for column in results.columns):
        return results.assign(repeat=0, fold=0)
    held = set() if folds is None else set(folds["run_id"])
    finished = results[results["status"] == "FINISHED"] if "status" in results else results  # FAILED: no folds
    missing = [run_id for run_id in finished["run_id"] if run_id not in held]
    if missing:
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # as gbreg.console does
        frames = [] if folds is None else [folds]
        with tempfile.TemporaryDirectory(prefix="gbreg-folds-") as folder:
            for run_id in missing:
                target = Path(folder) / run_id
                target.mkdir()
                path = retrying(lambda: client.download_artifacts(run_id, FOLDS_ARTIFACT, str(target)))
                frames.append(pd.read_csv(path).assign(run_id=run_id))
        folds = pd.concat(frames, ignore_index=True)
    trial_level = [c for c in results.columns if c == "run_id" or c not in folds.columns
                   and not c.endswith("_std") and not c.startswith("curve_") and c not in POST_SWEEP_METRICS]
    return folds.merge(results[trial_level], on="run_id", how="inner")


def _plot_artifacts(client, run_id: str) -> list[str]:
    try:
        return [entry.path for entry in client.list_artifacts(run_id, "plots") if entry.path.endswith(".png")]
    except Exception:  # noqa: BLE001 - no plots is not an error for the findings
        return []


def verdict_metrics(verdicts: list[Verdict]) -> tuple[dict[str, float], dict[str, str]]:
    """Parent-run metrics (verdict code +1/0/-1, statistic, raw and Holm-adjusted p, interval) and tags
    (verdict and statement). Non-finite numbers (an untestable hypothesis's p) are not logged."""
    metrics: dict[str, float] = {}
    tags: dict[str, str] = {}
    for v in verdicts:
        metrics[f"hypothesis_{v.index}_verdict"] = VERDICT_CODES[v.verdict]
        for name in ("statistic", "p_value", "p_adjusted", "ci_low", "ci_high"):
            if math.isfinite(v.numbers.get(name, float("nan"))):
                metrics[f"hypothesis_{v.index}_{name}"] = v.numbers[name]
        tags[f"gbreg.hypothesis.{v.index}"] = f"{v.verdict}: {v.hypothesis.describe()}"[:5000]
    counts = {name: sum(v.verdict == name for v in verdicts) for name in VERDICT_CODES}
    metrics.update({f"hypotheses_{name}": float(count) for name, count in counts.items()})
    tags["gbreg.findings"] = ", ".join(f"{count} {name}" for name, count in counts.items())
    return metrics, tags


def findings_markdown(prepared, results, splits, verdicts: list[Verdict], plots: list[str],
                      no_reference: list[str]) -> str:
    spec = prepared.spec
    n_splits = int(splits.groupby(["repeat", "fold"]).ngroups) if len(splits) else 0
    counts = {name: sum(v.verdict == name for v in verdicts) for name in VERDICT_CODES}
    lines = [f"# Findings: {spec.name}", "",
             f"Data set **{prepared.dataset.name}** ({prepared.task}, {len(prepared.dataset.y)} rows), metric "
             f"{prepared.metric}; {counted(len(results), 'trial')}, {n_splits} split(s) each "
             f"({spec.repeats} repeat(s), {spec.evaluation.split}).", "",
             "Verdicts: " + ", ".join(f"{count} {name}" for name, count in counts.items()) + ".", "",
             "| # | hypothesis | verdict | effect (interval, not adjusted) | unit | p | p (Holm) |", "|---" * 7 + "|"]
    for v in verdicts:
        effect = (effect_with_interval(v.hypothesis.kind, v.effect, v.ci_low, v.ci_high) if math.isfinite(v.effect)
                  else "–")
        units = f"{v.n_units} {v.unit}{'s' if v.n_units != 1 else ''}" if v.n_units else "–"
        lines.append(f"| H{v.index} | {v.hypothesis.describe()} | **{v.verdict}** | {effect} | {units} | "
                     f"{format_number(v.p_value)} | {format_number(v.p_adjusted)} |")
    lines += ["", "The interval is each hypothesis's own (1 − significance) interval, not adjusted for multiplicity; "
              "the verdict uses the Holm-adjusted p, so an interval that excludes 0 (or lies inside ±tolerance) can "
              "go with an inconclusive verdict."]
    for v in verdicts:
        lines += ["", f"## H{v.index} · {v.hypothesis.describe()}", "", f"**{v.verdict.capitalize()}.** {v.reason}.", ""]
        links = _links_for(v.hypothesis, plots)
        if links:
            lines += ["Plots: " + " · ".join(f"[{path.rsplit('/', 1)[-1]}]({path})" for path in links), ""]
        if v.table:
            lines += [v.table, ""]
    lines += ["", "## Shrinkage against the unregularized model", "", _shrinkage_section(results, no_reference),
              "", "## How verdicts are reached", "", METHOD_NOTE]
    return "\n".join(lines) + "\n"


METHOD_NOTE = (
    "Unit of evidence: the repeat for k-fold (each split's summary averaged over the folds of its repeat: they "
    "share its rows), the split for holdout; fewer than 3 units: no test. The verdict uses the Holm-adjusted p "
    "across this study's tested hypotheses. Trend: Spearman's ρ along the axis for each configuration on each "
    "split, averaged per split over the configurations that vary (constant ones are counted, not averaged in "
    "as 0); two-sided one-sample t-test over the units, with its t interval. `trend: none`: a constant "
    "configuration counts as ρ = 0 (no trend); two one-sided tests against ±tolerance — supported when the interval lies inside, contradicted when it lies beyond. "
    "Units that agree exactly (no spread) get the exact sign-flip p over the units instead (at least 2/2^n). "
    "Sign: share of configuration × unit cells of the majority sign (zeros count against both signs), t-test "
    "with configurations and units as crossed random effects. Best: best interior minus best edge cell of the "
    "unit-averaged surface, against the same statistic on flat surfaces carrying the units' residuals "
    "(t-scaled multiplier bootstrap, best cells re-chosen each draw). judge(test='sign_flip') gives the exact "
    "randomization tests instead. See docs/hypotheses.md.")


def _links_for(h: Hypothesis, plots: list[str]) -> list[str]:
    wanted = {f"plots/heatmap_{h.measured}.png"}
    wanted |= {f"plots/path_{axis}_{h.measured}.png" for axis in [h.along, *(h.interior or [])] if axis}
    return [path for path in plots if path in wanted]


def _shrinkage_section(results, no_reference: list[str]) -> str:
    parts = []
    if no_reference:
        lambda_only = _without_alpha(results, no_reference)
        note = f" (for {lambda_only}, without reg_alpha: none at reg_lambda = 0)" if lambda_only else ""
        parts.append(f"No trial at reg_alpha = reg_lambda = 0 for {', '.join(no_reference)}{note}: the grid has no "
                     "unregularized point for it, so its shrinkage is not computed (linear counterparts are "
                     "compared with the `ols` counterpart when the spec lists it).")
    for prefix in ("leaf", "coef"):
        column = f"{prefix}_shrinkage"
        if column not in results.columns or results[column].notna().sum() == 0:
            continue
        shown = results[results[column].notna()]
        lambda_only = _without_alpha(shown, shown["model"].unique())
        note = f"for {lambda_only}, without reg_alpha: at reg_lambda = 0; " if lambda_only else ""
        parts.append(f"`{column}`: mean |{'leaf value' if prefix == 'leaf' else 'coefficient'}| relative to the "
                     f"same model at reg_alpha = reg_lambda = 0 ({note}other axes equal), averaged over the other "
                     "axes; in brackets the ratio at the 50th / 90th percentile of |value| (equal under "
                     "proportional shrinkage; the 50th falls first when a constant is subtracted).")
        for model, rows in shown.groupby("model", sort=False):
            parts.append(f"\n{model} ({_pivot_axes(rows)}):\n")
            parts.append(_shrinkage_pivot(rows, prefix))
    return "\n".join(parts) if parts else "No shrinkage computed."


def _without_alpha(results, models) -> str:
    """Those of ``models`` without reg_alpha (CatBoost, HistGradientBoosting), whose unregularized point is
    reg_lambda = 0: their names, comma-separated."""
    return ", ".join(str(m) for m in models if not _has_alpha(results[results["model"] == m]))


def _pivot_axes(rows) -> str:
    """How a model's shrinkage table is laid out: one row per reg_alpha, or a single row without it."""
    if _has_alpha(rows):
        return "rows reg_alpha, columns reg_lambda"
    return "it has no reg_alpha; columns reg_lambda"


def _has_alpha(rows) -> bool:
    return "reg_alpha" in rows.columns and rows["reg_alpha"].notna().any()


def _shrinkage_pivot(rows, prefix: str) -> str:
    columns = [f"{prefix}_shrinkage", f"{prefix}_shrinkage_q50", f"{prefix}_shrinkage_q90"]
    if not _has_alpha(rows):  # a library without L1: its one row is reg_alpha "–"
        rows = rows.assign(reg_alpha="–")
    means = rows.groupby(["reg_alpha", "reg_lambda"])[columns].mean()
    alphas = sorted(rows["reg_alpha"].unique())
    lambdas = sorted(rows["reg_lambda"].unique())
    lines = ["| α \\ λ | " + " | ".join(format_number(b) for b in lambdas) + " |", "|---" * (len(lambdas) + 1) + "|"]
    for a in alphas:
        cells = []
        for b in lambdas:
            if (a, b) in means.index:
                mean, q50, q90 = means.loc[(a, b)]
                cells.append(f"{format_number(mean)} ({format_number(q50)}/{format_number(q90)})")
            else:
                cells.append("")
        lines.append(f"| {format_number(a)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def findings_text(client, parent) -> str:
    """The findings.md of a study's parent run."""

    run_id = parent.info.run_id
    try:
        path = retrying(lambda: client.download_artifacts(run_id, FINDINGS_ARTIFACT))
    except Exception as exc:  # noqa: BLE001 - MLflow raises several types for a missing artifact
        raise UserInputError(f"run {run_id} has no {FINDINGS_ARTIFACT}: its spec states no hypotheses (expect:) "
                             "or the study has not finished") from exc
    with open(path, encoding="utf-8") as handle:
        return handle.read()
