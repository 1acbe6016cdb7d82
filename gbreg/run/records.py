"""What a running study logged, kept in memory for the steps after the sweep.

The main process already holds every trial's result when it logs it. The steps after the sweep (the
results table, the per-split table the hypotheses are tested on, the representative trials' curves and
leaf values for the figures) take them from here instead of reading back what was just written. Only
trials finished by an earlier, interrupted run of the same study are read from the store
(:func:`gbreg.tracking.readback.runs_frame`), since this process never held them.

Each row is what the store would give back for the run (:func:`gbreg.tracking.readback.runs_frame`): params as the
strings MLflow keeps, metrics that are finite, and each curve's last finite value (MLflow's latest value
of a metric history).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gbreg.models.trees import reached_values
from gbreg.tracking.readback import runs_frame
from gbreg.tracking.run_table import numeric_columns
from gbreg.tracking.tracker import finite, param_value

# Leaf values are kept for the figures' representative trials, which are known only after the sweep (the
# candidates, see RepresentativeCandidates); up to this many values (float64: 8 bytes each) are kept, the
# rest are read back from the store if needed.
LEAF_VALUE_BUDGET = 4_000_000


class SweepRecords:
    """The runs this process logged: one row each, and what the figures and the hypotheses need."""

    def __init__(self, leaf_value_budget: int = LEAF_VALUE_BUDGET, candidates=None):
        """``candidates``: a :class:`gbreg.report.plots.trial_figures.RepresentativeCandidates`; only the
        trials it keeps have their curves and leaf values held (None: every trial's)."""
        self._rows: dict[str, dict] = {}  # trial key -> row, in the order the trials were logged
        self._folds: dict[str, pd.DataFrame] = {}  # run id -> per-split table (several splits only)
        self._curves: dict[str, dict[str, np.ndarray]] = {}
        self._leaf_values: dict[str, np.ndarray] = {}
        self._leaf_budget = leaf_value_budget
        self._candidates = candidates

    def add(self, trial, run_id: str, params: dict, result) -> None:
        """Record a trial as it was logged: ``params`` as given to the run at its start, ``result`` the
        :class:`gbreg.models.trial.TrialResult` logged at its end."""
        row = {"run_id": run_id, "run_name": trial.run_name, "status": "FINISHED" if result.ok else "FAILED",
               "trial_key": trial.trial_key, "kind": trial.kind}
        row.update({str(k): param_value(v) for k, v in params.items()})
        if result.ok:
            row.update({str(k): param_value(v) for k, v in result.extra_params.items()})
            row.update({k: float(v) for k, v in result.metrics.items() if finite(v)})
            for name, values in result.curves.items():
                kept = [float(v) for v in np.asarray(values) if finite(v)]
                if kept:
                    row[name] = kept[-1]
            if result.folds is not None and len(result.folds) > 1:
                self._folds[run_id] = result.folds
            keep, dropped = (True, set()) if self._candidates is None else self._candidates.offer(trial, row)
            for key in dropped:
                self._drop_trial_data(self._rows[key]["run_id"])
            if keep:
                self._curves[run_id] = result.curves
                self._keep_leaf_values(run_id, result)
        self._rows[trial.trial_key] = row

    def _drop_trial_data(self, run_id: str) -> None:
        self._curves.pop(run_id, None)
        values = self._leaf_values.pop(run_id, None)
        if values is not None:
            self._leaf_budget += len(values)

    def _keep_leaf_values(self, run_id: str, result) -> None:
        if result.leaves is None or len(result.leaves) > self._leaf_budget:
            return
        # a copy (the reached leaves' values): a view would keep the table's float columns alive
        values = reached_values(result.leaves)
        self._leaf_values[run_id] = values
        self._leaf_budget -= len(values)

    def results_frame(self, plan, client=None, done_before: dict[str, str] | None = None) -> pd.DataFrame:
        """One row per trial of ``plan`` that has a run: logged now (held here) or finished by an earlier
        run (``done_before``: trial key -> run id, read from the store through ``client``)."""
        earlier = {}
        ids = [run_id for key, run_id in (done_before or {}).items() if key not in self._rows]
        if ids and client is not None:
            frame = runs_frame(client, ids)
            earlier = {row["trial_key"]: row for row in frame.to_dict("records")}
        rows = [self._rows.get(t.trial_key) or earlier.get(t.trial_key) for t in plan]
        frame = pd.DataFrame([row for row in rows if row is not None])
        return numeric_columns(frame)

    def folds_frame(self, plan=None) -> pd.DataFrame | None:
        """The per-split tables of the trials logged now, with their ``run_id`` (None if there are none), in
        the order of ``plan`` if given, else as logged. In the plan's order, the tables the hypotheses are
        tested on do not depend on which worker finished first (nor do the last bits of their sums)."""
        if not self._folds:
            return None
        run_ids = list(self._folds)
        if plan is not None:
            logged = [self._rows[t.trial_key]["run_id"] for t in plan if t.trial_key in self._rows]
            run_ids = [run_id for run_id in logged if run_id in self._folds]
        return pd.concat([self._folds[run_id].assign(run_id=run_id) for run_id in run_ids], ignore_index=True)

    def curve(self, run_id: str, name: str) -> np.ndarray | None:
        """A per-round curve of a trial logged now (None: not held here)."""
        curves = self._curves.get(run_id)
        return None if curves is None or name not in curves else np.asarray(curves[name], dtype=float)

    def leaf_values(self, run_id: str) -> np.ndarray | None:
        """The leaf values of a trial logged now, if they were kept (None: not held here)."""
        return self._leaf_values.get(run_id)
