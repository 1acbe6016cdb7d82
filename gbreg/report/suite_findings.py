"""``suite_findings.md``: per claim, on how many data sets it holds, fails or is inconclusive for each
library, the combined estimate across data sets, what the failing data sets have in common, its forest
plot, and the per-data-set verdicts."""

from __future__ import annotations

import pandas as pd

from gbreg.analysis.meta import describe_contrast
from gbreg.analysis.verdicts import effect_with_interval, format_number
from gbreg.report.forest import forest_file_name
from gbreg.spec.hypotheses import Hypothesis
from gbreg.tracking.tracker import finite

METHOD_NOTE = (
    "Each data set is a normal gbreg study; each hypothesis is judged on each booster library separately, with "
    "the study's own test (docs/hypotheses.md), and a hypothesis that cannot apply to a library (a `where` that "
    "selects another library, an axis the library does not have) gives no row. The combined estimate is a "
    "random-effects meta-analysis of the per-data-set effects (REML τ², cluster-robust CR2 interval "
    "with Satterthwaite degrees of freedom; docs/hypotheses.md, \"Across data sets\"); a best-point claim is "
    "combined centred on the flat-surface mean, in its SDs: each data set's interior-minus-edge difference "
    "less its mean on flat surfaces carrying its own noise (`null_mean`), over their SD (`null_sd`), since the "
    "raw difference is in each data set's own units and leans below 0 on flat surfaces. I² is the share of "
    "the spread between data sets not explained by their own uncertainty; the prediction interval is where a "
    "new data set's true effect would fall.")


def suite_findings_markdown(suite, outcome, contrast: pd.DataFrame, plots: list[str]) -> str:
    results = outcome.results
    combined = results[results["dataset"] == "combined"]
    lines = [f"# Suite findings: {suite.name}", "",
             f"{len(outcome.studies)} data sets, one study each, in experiment **{suite.name}**; suite run "
             f"`{outcome.run_id}`.", "",
             "| # | claim | library | holds | fails | inconclusive | combined effect (interval) | I² | "
             "across data sets |", "|---" * 9 + "|"]
    for row in combined.itertuples():
        lines.append(f"| H{row.hypothesis} | {row.claim} | {row.library} | {row.n_supported} | "
                     f"{row.n_contradicted} | {row.n_inconclusive} | {_effect(row)} | {format_percent(row.i2)} | "
                     f"**{row.verdict}** |")
    for number, raw in enumerate(suite.hypotheses, 1):
        h = Hypothesis.model_validate(raw)
        lines += ["", f"## H{number} · {h.describe()}", ""]
        mine = results[results["hypothesis"] == number]
        if not len(mine):
            lines += ["No data set had values for this claim.", ""]
            continue
        for row in mine[mine["dataset"] == "combined"].itertuples():
            prediction = (f"; prediction interval for a new data set {format_number(row.pi_low)} to "
                          f"{format_number(row.pi_high)}" if pd.notna(row.pi_low) and pd.notna(row.pi_high) else "")
            lines += [f"- **{row.library}: {row.verdict} across data sets.** {row.reason}{prediction}.", ""]
        if contrast is not None and len(contrast):
            part = contrast[contrast["hypothesis"] == number].drop(columns="hypothesis")
            if len(part):
                lines += [describe_contrast(part, by=["library"]), ""]
        if forest_file_name(number) in plots:
            lines += [f"![forest plot H{number}](plots/{forest_file_name(number)})", ""]
        lines += [_per_data_set_table(mine[mine["dataset"] != "combined"]), ""]
    lines += ["## Data sets", "", _data_set_table(outcome), "", "## How the verdicts are combined", "", METHOD_NOTE]
    return "\n".join(lines) + "\n"


def _per_data_set_table(rows: pd.DataFrame) -> str:
    lines = ["| data set | library | verdict | effect (interval) | units |", "|---" * 5 + "|"]
    for row in rows.sort_values(["dataset", "library"]).itertuples():
        lines.append(f"| {row.dataset} | {row.library} | {row.verdict} | {_effect(row)} | {_count(row.n_units)} |")
    return "\n".join(lines)


def _data_set_table(outcome) -> str:
    lines = ["| data set | task | rows | features | categorical | missing | study run |", "|---" * 7 + "|"]
    for row in outcome.descriptors.itertuples():
        lines.append(f"| {row.dataset} | {row.task} | {row.n_rows:,} | {row.n_features} | {row.n_categorical} | "
                     f"{row.missing_share:.1%} | `{outcome.studies.get(row.dataset, '')}` |")
    return "\n".join(lines)


def _effect(row) -> str:
    if not finite(row.effect):
        return "–"
    return effect_with_interval(getattr(row, "kind", None), row.effect, row.ci_low, row.ci_high)


def format_percent(value) -> str:
    return f"{float(value):.0%}" if finite(value) else "–"


def _count(value) -> str:
    return str(int(value)) if finite(value) else "–"

