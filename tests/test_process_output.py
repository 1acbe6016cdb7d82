"""Who may redirect the process's output: the library check provokes the boosting libraries' errors, and
LightGBM prints ``[LightGBM] [Fatal] ...`` from C++ straight to a file descriptor before it raises.

The command line owns its process, so it silences that line (the error is printed once, cleanly). A
library caller (a notebook, a service) keeps its file descriptors: gbreg redirects nothing there, and
the line stays on the caller's output.
"""

from __future__ import annotations

import subprocess
import sys

from conftest import small_spec, write_spec

REJECTED = {"models": {"lightgbm": {"n_estimators": 5, "path_smooth": -1}}, "sweep": {"reg_alpha": [0, 1]}}

LIBRARY_CALLER = """
import sys
from gbreg import SpecError, load_spec
from gbreg.run.study import prepare_study
try:
    prepare_study(load_spec(sys.argv[1]))
except SpecError as exc:
    print("SpecError:", exc, flush=True)
"""


def _combined_output(args: list[str], cwd) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_cli_prints_a_rejected_parameter_once_without_the_libraries_native_line(tmp_path):
    spec_path = write_spec(tmp_path, small_spec(**REJECTED))
    done = _combined_output([sys.executable, "-m", "gbreg", "validate", str(spec_path)], tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "models.lightgbm.path_smooth" in output and "lightgbm rejects path_smooth=-1" in output
    assert "[LightGBM]" not in output


def test_a_library_caller_keeps_its_output_untouched(tmp_path):
    spec_path = write_spec(tmp_path, small_spec(**REJECTED))
    done = _combined_output([sys.executable, "-c", LIBRARY_CALLER, str(spec_path)], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "SpecError:" in done.stdout and "models.lightgbm.path_smooth" in done.stdout
    # the native line reached the caller's own output: its file descriptors were never redirected
    assert "[LightGBM] [Fatal]" in done.stdout + done.stderr
