"""What a trial measures: every metric gbreg logs on a trial's run, declared once.

Each :class:`Measure` is one MLflow metric name (a score is a suffix: ``rmse`` is logged as ``train_rmse``,
``test_rmse``, ``gap_rmse`` and the curves ``curve_train_rmse`` / ``curve_test_rmse``), what kind of number
it is, which models have it, which way is better, the title the tables and plots show, and the views that
show it. ``computed_by`` names the function that computes it. A per-split metric over several splits is also
logged as ``<name>_std``. Every column list, plot title, hypothesis vocabulary and the metrics-per-task table
are derived from :data:`MEASURES` below; adding a metric is an entry here plus its computation.

This module imports nothing of gbreg's, so every other module can read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# score: train/test/gap of a prediction metric; tree: the booster's trees; mechanism: leaf values against the
# closed form; linear: the coefficients; support: the features a model uses; timing; distribution: of the
# leaf values or coefficients; post-sweep: one value per trial computed after the sweep
Kind = Literal["score", "tree", "mechanism", "linear", "support", "timing", "distribution", "post-sweep"]
Models = Literal["booster", "linear", "any"]
# views: summary = `gbreg results` table (results.SUMMARY_COLUMNS), best = the best-per-model table printed
# after `gbreg run` and in `gbreg report`, heatmap = the heatmaps' panels, comparison = comparison.csv's
# booster / linear blocks (in comparison_rank order), comparison-terminal = `gbreg results --comparison`
View = Literal["summary", "best", "heatmap", "comparison", "comparison-terminal"]

PENALTY_AXES = ("reg_alpha", "reg_lambda")
SCORE_PARTS = ("train", "test", "gap")
CURVE_PARTS = ("train", "test")


@dataclass(frozen=True)
class Measure:
    name: str  # the MLflow metric name (for a score, the suffix after train_/test_/gap_/curve_<part>_)
    kind: Kind
    computed_by: str  # module.function that computes it
    title: str = ""  # the human name in tables and plots; "" = the name with spaces for underscores
    on: Models = "any"  # boosters, linear counterparts, or both
    direction: Literal["higher", "lower"] | None = None  # which way is better (scores only)
    unit: str = ""
    shown: tuple[View, ...] = ()
    comparison_rank: int = 0  # position in its block of comparison.csv (sparsity first)
    tasks: tuple[str, ...] = ()  # scores: the tasks the metric fits

    @property
    def label(self) -> str:
        return self.title or self.name.replace("_", " ")

    @property
    def per_split(self) -> bool:
        """Measured on every split (mean logged, plus ``_std`` over several splits), not after the sweep."""
        return self.kind != "post-sweep"


def _score(name, title, direction, tasks) -> Measure:
    return Measure(name, "score", "gbreg.models.metrics.score", title, direction=direction, tasks=tasks)


def _tree(name, title="", unit="", shown=(), rank=0) -> Measure:
    return Measure(name, "tree", "gbreg.models.trees.tree_stats", title, "booster", unit=unit, shown=shown,
                   comparison_rank=rank)


def _mechanism(name) -> Measure:
    return Measure(name, "mechanism", "gbreg.models.leaf_mechanism.mechanism_stats", on="booster")


def _linear(name, title="", shown=(), rank=0) -> Measure:
    return Measure(name, "linear", "gbreg.models.linear.coefficient_stats", title, "linear", shown=shown,
                   comparison_rank=rank)


def _distribution(name) -> Measure:
    return Measure(name, "distribution", "gbreg.models.leaf_distribution.value_distribution_stats")


def _shrinkage(name) -> Measure:
    return Measure(name, "post-sweep", "gbreg.analysis.shrinkage.shrinkage_table",
                   on="booster" if name.startswith("leaf_") else "linear")


_REGRESSION, _CLASSIFICATION = ("regression",), ("binary", "multiclass")
MEASURES: tuple[Measure, ...] = (
    _score("rmse", "RMSE", "lower", _REGRESSION),
    _score("mae", "MAE", "lower", _REGRESSION),
    _score("r2", "R²", "higher", _REGRESSION),
    _score("logloss", "log loss", "lower", _CLASSIFICATION),
    _score("auc", "AUC", "higher", _CLASSIFICATION),
    _score("accuracy", "accuracy", "higher", _CLASSIFICATION),
    _tree("n_trees"),
    _tree("n_leaves", shown=("summary", "comparison"), rank=4),
    _tree("leaves_per_tree", "leaves per tree", shown=("summary", "best", "heatmap")),
    _tree("depth_mean", shown=("best",)),
    _tree("depth_max"),
    _tree("zero_leaf_fraction", "fraction of leaves exactly 0",
          shown=("summary", "best", "heatmap", "comparison", "comparison-terminal"), rank=1),
    _tree("leaf_abs_mean", "mean |leaf value| (raw score units)", "raw score", ("summary", "best", "heatmap")),
    _tree("empty_leaf_fraction", "fraction of leaves no training row reaches"),
    _tree("leaf_l1", unit="raw score", shown=("comparison",), rank=2),
    _tree("leaf_l2", unit="raw score", shown=("comparison",), rank=3),
    _mechanism("leaf_l1_zeroed_fraction"),
    _mechanism("leaf_l1_shrinkage_share"),
    _mechanism("leaf_l2_shrinkage_share"),
    _mechanism("leaf_closed_form_max_abs_error"),
    _linear("n_nonzero_coef", shown=("summary", "best", "comparison"), rank=2),
    _linear("zero_coef_fraction", "fraction of coefficients exactly 0",
            shown=("summary", "best", "comparison", "comparison-terminal"), rank=1),
    _linear("coef_l1", shown=("comparison",), rank=3),
    _linear("coef_l2", shown=("comparison",), rank=4),
    # trees.tree_stats for a booster, linear.coefficient_stats for a linear model
    Measure("n_features_used", "support", "gbreg.models.trees.tree_stats", comparison_rank=5,
            shown=("summary", "best", "comparison", "comparison-terminal")),
    Measure("fit_seconds", "timing", "gbreg.models.trial.aggregate", unit="s", shown=("summary", "comparison"),
            comparison_rank=6),
    # zero_mass is the number zero_leaf_fraction / zero_coef_fraction gives: logged under both names
    *map(_distribution, ("zero_mass", "n_nonzero_values", "laplace_loc", "laplace_scale", "laplace_loglik",
                         "gaussian_loc", "gaussian_scale", "gaussian_loglik", "laplace_loglik_minus_gaussian",
                         "laplace_wins", "excess_kurtosis", "abs_q50", "abs_q90")),
    *map(_shrinkage, ("leaf_shrinkage", "leaf_shrinkage_q50", "leaf_shrinkage_q90", "leaf_shrinkage_q90_minus_q50",
                      "coef_shrinkage", "coef_shrinkage_q50", "coef_shrinkage_q90", "coef_shrinkage_q90_minus_q50")),
)
BY_NAME = {m.name: m for m in MEASURES}
SCORES = tuple(m for m in MEASURES if m.kind == "score")


def names(*kinds: Kind, on: Models | None = None) -> tuple[str, ...]:
    """The measures of these kinds (all when none given), in catalogue order; ``on`` keeps the measures a
    booster (or a linear model) has, those of both included."""
    return tuple(m.name for m in MEASURES if (not kinds or m.kind in kinds) and (on is None or m.on in (on, "any")))


def shown_in(view: View, on: Models | None = None) -> tuple[str, ...]:
    """The measures a view shows, in its order (catalogue order; comparison.csv's blocks by rank)."""
    chosen = [m for m in MEASURES if view in m.shown and (on is None or m.on in (on, "any"))]
    if view == "comparison":
        chosen.sort(key=lambda m: m.comparison_rank)
    return tuple(m.name for m in chosen)


def score_columns(metric: str) -> tuple[str, ...]:
    return tuple(f"{part}_{metric}" for part in SCORE_PARTS)


def find(column: str) -> Measure | None:
    """The measure behind a logged metric name: ``test_rmse``, ``curve_train_r2``, ``leaf_l1_std`` ..."""
    for name in (column, column.removesuffix("_std")):
        if name in BY_NAME and BY_NAME[name].kind != "score":
            return BY_NAME[name]
    for prefix in (*(f"curve_{part}_" for part in CURVE_PARTS), *(f"{part}_" for part in SCORE_PARTS)):
        suffix = column.removeprefix(prefix).removesuffix("_std")
        if column.startswith(prefix) and suffix in BY_NAME and BY_NAME[suffix].kind == "score":
            return BY_NAME[suffix]
    return None


HIGHER_IS_BETTER = {m.name: m.direction == "higher" for m in SCORES}
METRICS_BY_TASK = {task: tuple(m.name for m in SCORES if task in m.tasks)
                   for task in dict.fromkeys(task for m in SCORES for task in m.tasks)}
SCORE_TITLES = {m.name: m.label for m in SCORES}
TITLES = {m.name: m.title for m in MEASURES if m.kind != "score" and m.title}
