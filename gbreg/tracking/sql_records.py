"""A trial's records written straight into MLflow's SQL tables: one transaction to open its run, one to
close it, instead of the dozen that MLflow's client takes (create_run, log_batch per kind, the latest
metrics, set_terminated) through its ORM. A study of short trials spends most of its main-process time
there, and that process logs every trial. Opening and closing runs are handed to a
:class:`gbreg.tracking.group_commit.GroupCommitWriter`: the study's loop does not wait for the disk, and
the runs opened and closed meanwhile share one commit; :meth:`SqlTrialRecords.settle` is the barrier
before anything else reads or writes the store.

The rows are the ones MLflow's own ``SqlAlchemyStore`` writes for the same calls (the same tables and
columns, through its own table definitions), so a run written here reads back exactly like one written
through the client: tests/test_sql_records.py writes a study both ways and compares every record. It is
used only on an embedded SQLite store whose schema revision that comparison has run against
(:data:`TESTED_REVISIONS`); any other store (a tracking server over HTTP, PostgreSQL) gets MLflow's
public API.
"""

from __future__ import annotations

import time
import uuid

from gbreg.tracking.group_commit import GroupCommitWriter
from gbreg.tracking.store import retrying

# Tables in the order a transaction fills them: a run's row before the rows that refer to it.
TABLE_ORDER = ("SqlRun", "SqlTag", "SqlParam", "SqlMetric", "SqlLatestMetric")
KEY_VALUE_COLUMNS = ("key", "value", "run_uuid")  # tags and params
METRIC_COLUMNS = ("key", "value", "timestamp", "step", "is_nan", "run_uuid")  # metrics and latest metrics

# A write's rows: table -> (column names, one tuple of values per row). Tuples, not a dict per row: a
# trial has a few hundred rows, and the writer may hold dozens of trials while they wait for a commit.
Rows = dict[str, tuple[tuple[str, ...], list[tuple]]]

# The MLflow schema revisions (alembic heads) whose tables this module writes; the one of a new MLflow
# release is added after tests/test_sql_records.py passes with it.
TESTED_REVISIONS = frozenset({"dc11669786a5"})  # MLflow 3.x up to 3.17


def schema_revision(store) -> str | None:
    from sqlalchemy import text

    try:
        with store.engine.connect() as connection:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception:  # noqa: BLE001 - no such table or no engine: not a store this module writes
        return None


class SqlTrialRecords:
    """Opens and closes trial runs of one experiment on an SQL store, row for row as MLflow would."""

    def __init__(self, store, experiment_id: str, artifact_location: str):
        from mlflow.store.tracking.dbmodels import models

        self._engine = store.engine
        self._tables = {name: getattr(models, name).__table__ for name in TABLE_ORDER}
        self.experiment_id = experiment_id
        self.artifact_location = artifact_location
        self._statements: dict[tuple, str] = {}
        self._checked_metric_names: set[str] = set()
        self._writer: GroupCommitWriter[tuple[Rows, tuple]] = GroupCommitWriter(self._write_transaction)

    @classmethod
    def for_client(cls, client, experiment_id: str) -> SqlTrialRecords | None:
        """The writer for ``client``'s store, or None where MLflow's public API must be used."""
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        store = getattr(getattr(client, "_tracking_client", None), "store", None)
        if (not isinstance(store, SqlAlchemyStore) or store.engine.dialect.name != "sqlite"
                or schema_revision(store) not in TESTED_REVISIONS):
            return None
        experiment = retrying(lambda: client.get_experiment(experiment_id))
        return cls(store, experiment_id, experiment.artifact_location)

    def open_run(self, run_name: str, tags: dict[str, str], params: dict[str, str]) -> tuple[str, str]:
        """A RUNNING run with its tags and params (``SqlAlchemyStore.create_run`` + ``log_batch``);
        returns its id and artifact URI."""
        from mlflow.entities import LifecycleStage, Param, RunStatus, RunTag, SourceType
        from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME, MLFLOW_USER
        from mlflow.utils.uri import append_to_uri_path
        from mlflow.utils.validation import _validate_param, _validate_tag

        run_id = uuid.uuid4().hex
        artifact_uri = append_to_uri_path(self.artifact_location, run_id, "artifacts")
        tags = {**tags, MLFLOW_RUN_NAME: run_name}
        for key, value in tags.items():
            _validate_tag(key, value)
        for key, value in params.items():
            _validate_param(key, value)
        run = {"run_uuid": run_id, "name": run_name, "source_type": SourceType.to_string(SourceType.UNKNOWN),
               "source_name": "", "entry_point_name": "", "user_id": tags.get(MLFLOW_USER, "unknown"),
               "status": RunStatus.to_string(RunStatus.RUNNING), "start_time": _now(), "end_time": None,
               "deleted_time": None, "source_version": "", "lifecycle_stage": LifecycleStage.ACTIVE,
               "artifact_uri": artifact_uri, "experiment_id": int(self.experiment_id)}
        rows: Rows = {"SqlRun": (tuple(run), [tuple(run.values())]),
                      "SqlTag": (KEY_VALUE_COLUMNS, [(RunTag(k, v).key, v, run_id) for k, v in tags.items()]),
                      "SqlParam": (KEY_VALUE_COLUMNS, [(Param(k, v).key, v, run_id) for k, v in params.items()])}
        self._writer.submit((rows, ()))
        return run_id, artifact_uri

    def close_run(self, run_id: str, metrics: list[tuple[str, float, int, int]], params: dict[str, str],
                  status: str) -> None:
        """Metrics (key, value, timestamp, step; finite values), params and the final status in one
        transaction (``log_batch`` + ``set_terminated``); the latest value of each metric as MLflow
        keeps it: the highest (step, timestamp, value)."""
        from mlflow.utils.validation import _validate_metric, _validate_param
        from sqlalchemy import update

        for key, value, timestamp, step in metrics:  # each name checked once: the rows come from float()
            if key not in self._checked_metric_names:
                _validate_metric(key, value, timestamp, step)
                self._checked_metric_names.add(key)
        for key, value in params.items():
            _validate_param(key, value)
        latest: dict[str, tuple[int, int, float]] = {}
        for key, value, timestamp, step in metrics:
            latest[key] = max(latest.get(key, (step, timestamp, value)), (step, timestamp, value))
        rows: Rows = {"SqlParam": (KEY_VALUE_COLUMNS, [(k, v, run_id) for k, v in params.items()]),
                      "SqlMetric": (METRIC_COLUMNS, [(k, v, t, s, False, run_id) for k, v, t, s in metrics]),
                      "SqlLatestMetric": (METRIC_COLUMNS, [(k, v, t, s, False, run_id)
                                                           for k, (s, t, v) in latest.items()])}
        runs = self._tables["SqlRun"]
        finish = update(runs).where(runs.c.run_uuid == run_id).values(status=status, end_time=_now())
        self._writer.submit((rows, (finish,)))

    def settle(self) -> None:
        """Every run opened or closed so far is in the store (raises the error writing it ended with)."""
        self._writer.settle()

    def stop(self) -> None:
        """Settle and end the writer thread (it starts again at the next run opened)."""
        self._writer.stop()

    def add_metrics(self, metrics_by_run: dict[str, dict[str, float]]) -> None:
        """Step-0 metrics (finite values) added to finished runs, all in one transaction
        (``log_batch`` per run); a metric a run already has keeps MLflow's latest-value rule."""
        from mlflow.utils.validation import _validate_metric
        from sqlalchemy import and_, delete, or_, select, tuple_

        now = _now()
        new = {(run_id, key): (0, now, float(value))
               for run_id, metrics in metrics_by_run.items() for key, value in metrics.items()}
        for (_, key), (step, timestamp, value) in new.items():
            _validate_metric(key, value, timestamp, step)
        if not new:
            return
        self.settle()  # the latest values it merges with must be in the store
        latest = self._tables["SqlLatestMetric"]
        pairs = list(new)

        def write():
            with self._engine.begin() as connection:
                merged = dict(new)
                for start in range(0, len(pairs), 400):  # bound the number of SQL parameters
                    chunk = pairs[start:start + 400]
                    match = tuple_(latest.c.run_uuid, latest.c.key).in_(chunk)
                    for row in connection.execute(select(latest.c.run_uuid, latest.c.key, latest.c.step,
                                                         latest.c.timestamp, latest.c.value).where(match)):
                        pair = (row.run_uuid, row.key)
                        merged[pair] = max(merged[pair], (row.step, row.timestamp, row.value))
                    connection.execute(delete(latest).where(or_(*(and_(latest.c.run_uuid == r, latest.c.key == k)
                                                                  for r, k in chunk))))
                connection.execute(self._tables["SqlMetric"].insert(), [
                    {"key": k, "value": v, "timestamp": t, "step": s, "is_nan": False, "run_uuid": r}
                    for (r, k), (s, t, v) in new.items()])
                connection.execute(latest.insert(), [
                    {"key": k, "value": v, "timestamp": t, "step": s, "is_nan": False, "run_uuid": r}
                    for (r, k), (s, t, v) in merged.items()])

        retrying(write)

    def _write_transaction(self, writes: list[tuple[Rows, tuple]]) -> None:
        """Runs' rows and updates (queued by :meth:`open_run`/:meth:`close_run`) in one transaction. The
        rows go through the driver's ``executemany`` with one fixed INSERT per table and columns:
        SQLAlchemy's per-call statement handling cost more than the insert itself for a trial's few
        hundred rows."""
        grouped: dict[tuple, tuple[str, list[tuple]]] = {}
        for table in TABLE_ORDER:
            for rows, _ in writes:
                columns, values = rows.get(table, ((), []))
                if values:
                    sql = self._insert_sql(table, columns)
                    grouped.setdefault((table, columns), (sql, []))[1].extend(values)
        statements = [statement for _, updates in writes for statement in updates]

        def write():
            with self._engine.begin() as connection:
                for sql, values in grouped.values():
                    connection.exec_driver_sql(sql, values)
                for statement in statements:
                    connection.execute(statement)

        retrying(write)

    def _insert_sql(self, table: str, columns: tuple[str, ...]) -> str:
        key = (table, columns)
        if key not in self._statements:
            missing = set(columns) - {c.name for c in self._tables[table].columns}
            if missing:  # a column the table does not have: the schema is not the tested one
                raise KeyError(f"{self._tables[table].name} has no column(s) {sorted(missing)}")
            placeholders = ", ".join("?" for _ in columns)
            self._statements[key] = f'INSERT INTO {self._tables[table].name} ({", ".join(columns)}) VALUES ({placeholders})'
        return self._statements[key]


def _now() -> int:
    return int(time.time() * 1000)
