"""Several studies at once on one brand-new embedded SQLite store.

Without gbreg's file lock, processes that open a fresh SQLite store at the same moment race in
MLflow's schema migration (``table _alembic_tmp_metrics already exists``) and can leave it
half-migrated. Here four ``gbreg run`` processes import everything first, say so, and wait on their
stdin; the test releases them together once all four are ready, so their first store access coincides.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import small_spec, write_spec

pytestmark = pytest.mark.slow

# imports first (seconds, and uneven across processes), then "ready" and wait for the release line.
# "unlocked" replaces gbreg's file lock with nothing: the race the lock prevents, to show the checks see it.
LAUNCHER = """
import sys
import mlflow.tracking, gbreg.run.study, gbreg.tracking.store, gbreg.tracking.tracker, xgboost, lightgbm
from gbreg.cli import main
if sys.argv[1] == "unlocked":
    import contextlib, filelock
    filelock.FileLock = lambda *args, **kwargs: contextlib.nullcontext()
print("ready", flush=True)
sys.stdin.readline()
sys.argv = ["gbreg", *sys.argv[2:]]
main()
"""


def start_together(folder: Path, specs: list[Path], lock: str = "locked") -> list[subprocess.Popen]:
    """``gbreg run`` on each spec, released at once after every process has finished importing."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "GBREG_MLFLOW_CONFIG")}
    processes = [subprocess.Popen([sys.executable, "-c", LAUNCHER, lock, "run", str(path), "-j", "1", "-q"],
                                  cwd=folder, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
                 for path in specs]
    for process in processes:  # blocks until that process has imported everything ("" if it died)
        assert process.stdout.readline() == "ready\n", process.communicate(timeout=60)[1]
    for process in processes:
        process.stdin.write("go\n")
        process.stdin.flush()
    return processes


def schema(db: Path) -> dict[tuple[str, str], list[str]]:
    """Every table and index with its columns and constraints; their order is left out, as Alembic's
    batch migrations rebuild tables with constraints in an order that varies from run to run."""
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT type, name, sql FROM sqlite_master").fetchall()
    return {(kind, name): sorted(line.strip().rstrip(",").strip() for line in (sql or "").splitlines())
            for kind, name, sql in rows}


def migrated_alone(folder: Path) -> Path:
    """A store created and migrated by one process: the schema a complete migration leaves."""
    from mlflow.tracking import MlflowClient

    folder.mkdir()
    MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}").search_experiments(max_results=1)
    return folder / "mlflow.db"


def test_four_studies_started_at_the_same_instant_on_a_new_store(tracking, tmp_path):
    assert not (tmp_path / "mlflow.db").exists()
    specs = []
    for i in range(4):  # two share an experiment, two have their own: both paths of experiment creation
        spec = small_spec(name=f"study{i}", sweep={"reg_alpha": [0, 1]},
                          models={"xgboost": {"n_estimators": 10, "max_depth": 2}},
                          mlflow={"experiment": "shared" if i < 2 else f"own{i}"})
        specs.append(write_spec(tmp_path, spec, name=f"study{i}.yaml"))
    processes = start_together(tmp_path, specs)
    outputs = [process.communicate(timeout=600) for process in processes]
    for process, (_out, err) in zip(processes, outputs):
        assert process.returncode == 0, err
        assert "Traceback" not in err and "error" not in err.lower(), err

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
    reference = migrated_alone(tmp_path / "reference")
    assert schema(tmp_path / "mlflow.db") == schema(reference)  # migrated completely, no leftover temp table
    with sqlite3.connect(reference) as connection:
        assert version == connection.execute("SELECT version_num FROM alembic_version").fetchall()
    # every study's metrics are there (nothing lost): 2 trials x test_rmse each
    with sqlite3.connect(tmp_path / "mlflow.db") as connection:
        (n_test_rmse,) = connection.execute("SELECT count(*) FROM latest_metrics WHERE key = 'test_rmse'").fetchone()
    assert n_test_rmse == 8
