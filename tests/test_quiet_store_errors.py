"""A failing write to an SQLite store: MLflow logs it with a long traceback before raising, and gbreg
reports the error it raises in one line. The command line (quiet_libraries) keeps the traceback out;
the error itself is still raised. A real store, opened read-only through SQLite's URI mode."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import sys
    if sys.argv[1] == "quiet":
        from gbreg.console import quiet_libraries
        quiet_libraries()
    from mlflow import MlflowClient
    store = sys.argv[2]
    MlflowClient(f"sqlite:///{store}").search_experiments()  # creates and migrates the store
    try:
        MlflowClient(f"sqlite:///file:{store}?mode=ro&uri=true").create_experiment("refused")
    except Exception as exc:
        print("raised", type(exc).__name__, "readonly" in str(exc))
""")


@pytest.mark.parametrize(("mode", "traceback_lines"), [("loud", 1), ("quiet", 0)])
def test_a_refused_write_is_raised_without_mlflows_traceback_on_the_command_line(tmp_path, mode, traceback_lines):
    ran = subprocess.run([sys.executable, "-c", SCRIPT, mode, str(tmp_path / "store.db")], capture_output=True,
                         text=True, timeout=120)
    assert ran.stdout.split() == ["raised", "MlflowException", "True"], ran.stderr
    assert ran.stderr.count("SQLAlchemy database error") == traceback_lines
