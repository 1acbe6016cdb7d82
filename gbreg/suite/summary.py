"""What ``gbreg suite run`` prints at the end: per claim and library, on how many data sets it holds,
fails or is inconclusive, and the combined verdict; then where to look next."""

from __future__ import annotations

from gbreg.analysis.verdicts import format_number


def print_suite_summary(outcome, out=print) -> None:
    if outcome.already_done:
        out(f"see `gbreg suite report {outcome.run_id} -o suite.html`")
        return
    results = outcome.results
    if results is None or not len(results):
        out(f"suite run {outcome.run_id}: no hypothesis had values on any data set")
        return
    combined = results[results["dataset"] == "combined"]
    out(f"\nsuite run {outcome.run_id}: {len(outcome.studies)} data sets")
    width = min(60, max(len(str(c)) for c in combined["claim"])) if len(combined) else 10
    out(f"  {'#':<4}{'claim':<{width}}  {'library':<12}{'holds':>6}{'fails':>6}{'incon.':>7}  combined")
    for row in combined.itertuples():
        claim = str(row.claim)[:width]
        effect = f"{format_number(row.effect)} [{format_number(row.ci_low)}, {format_number(row.ci_high)}]"
        out(f"  H{row.hypothesis:<3}{claim:<{width}}  {row.library:<12}{row.n_supported:>6}{row.n_contradicted:>6}"
            f"{row.n_inconclusive:>7}  {row.verdict} {effect}")
    for dataset, problem in outcome.failures:
        out(f"  note: {dataset}: {problem}")
    out(f"findings: suite_findings.md on run {outcome.run_id}; page: gbreg suite report {outcome.run_id} "
        "-o suite.html")
