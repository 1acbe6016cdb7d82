"""A new embedded SQLite store started from a migrated template.

MLflow builds a new SQLite store by running every one of its schema migrations: about a second of the
main process's CPU, taken from the workers that train the first trials meanwhile. The first store made on
a machine with a given MLflow version is built that way; gbreg then keeps an empty copy of it (the tables
and MLflow's own rows, no experiment) in its cache folder, and a later new store starts as a copy, which
MLflow opens in milliseconds and where it adds its Default experiment itself, as on a fresh database.

A template is used only when its schema revision is the one this MLflow expects; anything unusual (no
cache folder, a read-only home, a damaged file) falls back to MLflow's own migrations, silently.
``GBREG_CACHE_DIR`` moves the cache (default ``$XDG_CACHE_HOME/gbreg`` or ``~/.cache/gbreg``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

CACHE_ENV = "GBREG_CACHE_DIR"


def cache_folder() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gbreg"


def template_path() -> Path:
    import mlflow

    return cache_folder() / f"mlflow-{mlflow.__version__}-sqlite-store.db"


def expected_revision() -> str | None:
    try:
        from mlflow.store.db.utils import _get_latest_schema_revision
    except ImportError:
        return None
    try:
        return str(_get_latest_schema_revision())
    except Exception:  # noqa: BLE001 - without it no template is trusted
        return None


def schema_revision(path: Path) -> str | None:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)) as connection:
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        return None
    return row[0] if row else None


def start_from_template(db_path: Path) -> bool:
    """Make the new store ``db_path`` a copy of the template, if there is a usable one. Called under the
    store's lock, before MLflow opens it."""
    template = template_path()
    revision = expected_revision()
    if revision is None or not template.is_file() or schema_revision(template) != revision:
        return False
    try:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        partial = db_path.with_name(db_path.name + ".from-template")
        shutil.copyfile(template, partial)
        os.replace(partial, db_path)
    except OSError:
        return False
    return True


def save_template(db_path: Path) -> None:
    """Keep an empty copy of a store MLflow has just created and migrated (its experiments removed)."""
    template = template_path()
    revision = expected_revision()
    if revision is None or template.is_file() or schema_revision(db_path) != revision:
        return
    try:
        template.parent.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(prefix=template.name, suffix=".partial", dir=template.parent)
        os.close(handle)
        shutil.copyfile(db_path, partial)
        with contextlib.closing(sqlite3.connect(partial)) as connection:
            with connection:
                tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                for table in ("experiment_tags", "experiments"):
                    if table in tables:
                        connection.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed names
            connection.execute("VACUUM")
        os.replace(partial, template)
    except (OSError, sqlite3.Error):
        with contextlib.suppress(OSError, UnboundLocalError):
            os.unlink(partial)
