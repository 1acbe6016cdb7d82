"""Several studies at once on one brand-new embedded SQLite store.

Without gbreg's file lock, processes that open a fresh SQLite store at the same moment race in
MLflow's schema migration (``table _alembic_tmp_metrics already exists``) and can leave it
half-migrated. Here four ``gbreg run`` processes import everything first, then wait for the same
wall-clock instant before opening the store, so their first store access really coincides.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time

import pytest
from conftest import small_spec, write_spec

pytestmark = pytest.mark.slow

# imports first (seconds, and uneven across processes), then sleep until the shared start instant
LAUNCHER = """
import sys, time
import mlflow.tracking, gbreg.runner, gbreg.store, gbreg.track, xgboost, lightgbm
from gbreg.cli import main
start = float(sys.argv[1])
sys.argv = ["gbreg", *sys.argv[2:]]
time.sleep(max(0.0, start - time.time()))
main()
"""


def test_four_studies_started_at_the_same_instant_on_a_new_store(tracking, tmp_path):
    assert not (tmp_path / "mlflow.db").exists()
    specs = []
    for i in range(4):  # two share an experiment, two have their own: both paths of experiment creation
        spec = small_spec(name=f"study{i}", sweep={"reg_alpha": [0, 1]},
                          models={"xgboost": {"n_estimators": 10, "max_depth": 2}},
                          mlflow={"experiment": "shared" if i < 2 else f"own{i}"})
        specs.append(write_spec(tmp_path, spec, name=f"study{i}.yaml"))
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "GBREG_MLFLOW_CONFIG")}
    start = time.time() + 25  # enough for four processes to finish importing on a busy machine
    processes = [subprocess.Popen([sys.executable, "-c", LAUNCHER, str(start), "run", str(path), "-j", "1", "-q"],
                                  cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for path in specs]
    outputs = [process.communicate(timeout=600) for process in processes]
    for process, (_out, err) in zip(processes, outputs):
        assert process.returncode == 0, err
        assert "Traceback" not in err and "error" not in err.lower(), err
    assert time.time() > start, "the processes started before the shared instant: raise the 25 s margin"

    with sqlite3.connect(tmp_path / "mlflow.db") as connection:
        studies = connection.execute(
            "SELECT t.value, r.status FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
            "AND t.key = 'gbreg.study' WHERE r.run_uuid IN (SELECT run_uuid FROM tags WHERE key = 'gbreg.kind' "
            "AND value = 'study')").fetchall()
        children = connection.execute(
            "SELECT t.value, r.status FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid AND t.key = 'gbreg.study' "
            "WHERE r.run_uuid IN (SELECT run_uuid FROM tags WHERE key = 'mlflow.parentRunId')").fetchall()
        experiments = sorted(name for (name,) in connection.execute("SELECT name FROM experiments"))
        version = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    assert sorted(studies) == [(f"study{i}", "FINISHED") for i in range(4)]
    assert sorted(children) == sorted([(f"study{i}", "FINISHED") for i in range(4) for _ in range(2)])
    assert experiments == ["Default", "own2", "own3", "shared"]
    assert len(version) == 1  # migrated once, completely
    # every study's metrics are there (nothing lost): 2 trials x test_rmse each
    with sqlite3.connect(tmp_path / "mlflow.db") as connection:
        (n_test_rmse,) = connection.execute("SELECT count(*) FROM latest_metrics WHERE key = 'test_rmse'").fetchone()
    assert n_test_rmse == 8
