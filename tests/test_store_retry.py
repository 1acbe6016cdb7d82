"""``gbreg.tracking.store.retrying`` on a real SQLite lock: retried while locked, other errors at once, the last
error raised as it came when the lock outlasts the attempts."""

from __future__ import annotations

import sqlite3

import pytest

from gbreg.tracking.store import retrying


@pytest.fixture
def locked_db(tmp_path):
    """A database another connection holds an exclusive lock on; yields (path, holder)."""
    path = tmp_path / "store.db"
    setup = sqlite3.connect(path)
    setup.execute("create table t (x integer)")
    setup.commit()
    setup.close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("begin exclusive")
    yield path, holder
    holder.close()


def _insert(path) -> int:
    writer = sqlite3.connect(path, timeout=0)  # fail at once instead of SQLite's own busy wait
    try:
        writer.execute("insert into t values (1)")
        writer.commit()
        return writer.execute("select count(*) from t").fetchone()[0]
    finally:
        writer.close()


def test_a_locked_database_is_retried_until_the_lock_is_released(locked_db):
    path, holder = locked_db
    calls = []

    def write() -> int:
        calls.append(1)
        if len(calls) == 3:
            holder.execute("commit")  # the other writer finishes while we back off
        return _insert(path)

    assert retrying(write, attempts=5, first_wait=0.001) == 1
    assert len(calls) == 3


def test_a_lock_that_outlasts_the_attempts_raises_sqlites_error(locked_db):
    path, _ = locked_db
    calls = []

    def write() -> int:
        calls.append(1)
        return _insert(path)

    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        retrying(write, attempts=4, first_wait=0.001)
    assert len(calls) == 4


def test_an_error_that_is_not_a_lock_is_raised_at_once(tmp_path):
    calls = []

    def write() -> None:
        calls.append(1)
        sqlite3.connect(tmp_path / "store.db").execute("select * from no_such_table")

    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        retrying(write, attempts=5, first_wait=0.001)
    assert len(calls) == 1
