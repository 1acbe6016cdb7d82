"""A study's trial runs written straight into the SQL tables (gbreg.tracking.sql_records) are the rows
MLflow's client writes for the same study: the same study is run twice, once each way, into two fresh
embedded stores, and every row of every table a trial touches is compared (ids and times aside), then
what MLflow's client reads back."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from conftest import small_spec, study_in_temp_store

from gbreg.tracking import sql_records
from gbreg.tracking.tracker import TAG_TRIAL_KEY

SPEC = small_spec(evaluation={"split": "kfold", "folds": 2, "metric": "rmse"}, repeats=2,
                  sweep={"reg_alpha": [0, 10], "reg_lambda": [0, 1]}, counterparts=["lasso"],
                  mlflow={"trial_figures": True})


def _run(folder: Path, direct: bool):
    with pytest.MonkeyPatch.context() as patch:
        if not direct:
            patch.setattr(sql_records.SqlTrialRecords, "for_client", classmethod(lambda cls, client, e: None))
        study = study_in_temp_store(folder, SPEC)
        outcome, client, _ = next(study)
        return outcome, client


def _rows(folder: Path, parent_id: str) -> dict[str, dict[str, list[tuple]]]:
    """trial key -> table -> the sorted rows of that trial's run, without ids, times and paths."""
    db = sqlite3.connect(folder / "mlflow.db")
    children = db.execute("SELECT r.run_uuid, t.value FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
                          "WHERE t.key = ?", (TAG_TRIAL_KEY,)).fetchall()
    out = {}
    for run_id, key in children:
        run = db.execute("SELECT name, source_type, source_name, entry_point_name, user_id, status, "
                         "deleted_time, source_version, lifecycle_stage, experiment_id, "
                         "end_time >= start_time, artifact_uri LIKE '%' || run_uuid || '/artifacts' FROM runs "
                         "WHERE run_uuid = ?", (run_id,)).fetchall()
        tags = db.execute("SELECT key, CASE WHEN key = 'mlflow.parentRunId' THEN value = ? ELSE value END "
                          "FROM tags WHERE run_uuid = ?", (parent_id, run_id)).fetchall()
        out[key] = {
            "runs": run, "tags": sorted(tags),
            "params": sorted(db.execute("SELECT key, value FROM params WHERE run_uuid = ?", (run_id,))),
            "metrics": sorted(db.execute("SELECT key, value, step, is_nan FROM metrics WHERE run_uuid = ? "
                                         "AND key NOT LIKE 'fit_seconds%'", (run_id,))),
            "latest_metrics": sorted(db.execute("SELECT key, value, step, is_nan FROM latest_metrics WHERE "
                                                "run_uuid = ? AND key NOT LIKE 'fit_seconds%'", (run_id,))),
        }
    return out


@pytest.mark.slow
def test_runs_written_straight_into_sqlite_are_the_rows_mlflow_writes(tmp_path):
    (tmp_path / "direct").mkdir()
    (tmp_path / "client").mkdir()
    direct, direct_client = _run(tmp_path / "direct", direct=True)
    public, public_client = _run(tmp_path / "client", direct=False)
    assert direct.n_ran == public.n_ran == direct.n_trials > 8 and not direct.failures
    assert sql_records.SqlTrialRecords.for_client(direct_client, "1") is not None  # the direct path ran
    rows_direct = _rows(tmp_path / "direct", direct.parent_run_id)
    rows_public = _rows(tmp_path / "client", public.parent_run_id)
    assert rows_direct.keys() == rows_public.keys() and len(rows_direct) == direct.n_trials
    for key in rows_direct:
        assert rows_direct[key] == rows_public[key], key
    # a booster's run (the query's order is the tags index's, by run id): its curves are metric histories
    some = next(rows for rows in rows_direct.values() if ("kind", "booster") in rows["params"])
    assert some["runs"][0][5] == "FINISHED" and len(some["metrics"]) > len(some["latest_metrics"]) > 20

    # and what MLflow's client reads back, artifacts included
    for key, child in _children(direct_client, direct.parent_run_id).items():
        other = _children(public_client, public.parent_run_id)[key]
        assert child.info.run_name == other.info.run_name and child.info.status == other.info.status
        assert child.data.params == other.data.params
        names = {a.path for a in direct_client.list_artifacts(child.info.run_id)}
        assert names == {a.path for a in public_client.list_artifacts(other.info.run_id)}
        assert {"folds.csv", "leaf_histogram.png"} <= names and names & {"leaves.parquet", "coefficients.csv"}
        if "leaves.parquet" in names:
            leaves = [pd.read_parquet(c.download_artifacts(r.info.run_id, "leaves.parquet", str(tmp_path / d)))
                      for c, r, d in ((direct_client, child, "a"), (public_client, other, "b"))]
            pd.testing.assert_frame_equal(*leaves)


def _children(client, parent_id: str) -> dict:
    runs = client.search_runs([client.get_run(parent_id).info.experiment_id],
                              f"tags.`mlflow.parentRunId` = '{parent_id}'", max_results=1000)
    return {r.data.tags[TAG_TRIAL_KEY]: r for r in runs}


def test_only_an_embedded_sqlite_store_of_a_tested_schema_is_written_directly(tracking, tmp_path):
    from gbreg.tracking.store import open_store

    client = open_store(tracking)
    experiment = client.create_experiment("probe")
    store = client._tracking_client.store
    assert sql_records.schema_revision(store) in sql_records.TESTED_REVISIONS
    assert sql_records.SqlTrialRecords.for_client(client, experiment) is not None
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sql_records, "TESTED_REVISIONS", frozenset({"not-this-one"}))
        assert sql_records.SqlTrialRecords.for_client(client, experiment) is None
