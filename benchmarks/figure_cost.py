"""What do the study's parent figures cost, beside the least matplotlib can do for a figure like them?

gbreg draws 17 figures after a 5 x 5 sweep of two boosters (heatmaps and regularization paths of five
columns, plus the learning curves and leaf histograms). This draws the 15 table figures of such a
results table (random numbers, the shape of ``studies/quickstart.yaml``'s) as a worker does, and beside
them the peer: a bare matplotlib figure of the same size with two panels, five lines of five markers
each, axis labels, titles, a legend and a two-line title, saved as PNG the same way. CPU seconds of this
one process (``time.process_time``), medians over ``--repeat`` rounds after one warm-up.

Usage::

    python benchmarks/figure_cost.py
    python benchmarks/figure_cost.py --repeat 1
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

import numpy as np
import pandas as pd

GRID = [0.0, 0.01, 0.2154, 4.642, 100.0]


def results_table(seed: int = 0) -> pd.DataFrame:
    """A finished 5 x 5 sweep of two boosters, with the columns the table figures draw."""
    rng = np.random.default_rng(seed)
    rows = [{"model": model, "kind": "booster", "status": "FINISHED", "run_id": f"{model}-{a}-{b}",
             "reg_alpha": a, "reg_lambda": b, "test_rmse": rng.uniform(55, 65), "gap_rmse": rng.uniform(5, 30),
             "leaves_per_tree": rng.uniform(5, 15), "zero_leaf_fraction": rng.uniform(0, 0.5),
             "leaf_abs_mean": rng.uniform(0.5, 5)}
            for model in ("xgboost", "lightgbm") for a in GRID for b in GRID]
    return pd.DataFrame(rows)


def bare_figure() -> bytes:
    """The peer: what matplotlib alone costs for a two-panel line figure of the same size."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.5), dpi=100)
    axes = figure.subplots(1, 2)
    rng = np.random.default_rng(0)
    for ax in axes:
        for line in range(5):
            ax.plot(np.arange(5), rng.random(5), marker="o", markersize=4, label=f"reg_alpha={line}")
        ax.set_xlabel("reg_lambda")
        ax.set_ylabel("test RMSE")
        ax.set_title("xgboost")
    figure.legend(*axes[0].get_legend_handles_labels(), loc="center right")
    figure.suptitle("a title\na second line")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, pil_kwargs={"compress_level": 1})
    return buffer.getvalue()


def cpu_seconds(draw) -> float:
    start = time.process_time()
    draw()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from gbreg.report.plots import PlotContext, prepare_drawing, render_png, table_figures

    prepare_drawing()  # matplotlib imported and its fonts loaded, as on a worker before the figures
    specs = table_figures(results_table(), PlotContext("rmse"))
    bare_figure()
    per_figure: dict[str, list[float]] = {spec[0]: [] for spec in specs}
    bare: list[float] = []
    for _ in range(args.repeat):
        bare.append(cpu_seconds(bare_figure))
        for spec in specs:
            per_figure[spec[0]].append(cpu_seconds(lambda spec=spec: render_png(spec)))
    floor = statistics.median(bare)
    print(f"figure_cost: {len(specs)} table figures of a 5 x 5 sweep of two boosters; CPU ms, median of "
          f"{args.repeat}")
    print(f"{'figure':<42} {'ms':>6} {'x bare':>7}")
    print(f"{'bare matplotlib two-panel figure (peer)':<42} {1000 * floor:6.0f} {1.0:7.2f}")
    for name, seconds in per_figure.items():
        median = statistics.median(seconds)
        print(f"{name:<42} {1000 * median:6.0f} {median / floor:7.2f}")
    total = sum(statistics.median(seconds) for seconds in per_figure.values())
    print(f"all {len(specs)}: {total:.2f} CPU s, {total / len(specs) / floor:.2f} x the bare figure each on average")


if __name__ == "__main__":
    main()
