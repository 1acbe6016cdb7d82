"""The library as a library: what a ``run_study`` caller reads is about its parameters, not the CLI's
options; ``gbreg.judge`` names a mistyped column; the outcome object is public (real libraries and store)."""

from __future__ import annotations

from conftest import small_spec, write_spec
from typer.testing import CliRunner


def _tiny_spec(**overrides) -> dict:
    return small_spec(name="lib28", models={"xgboost": {"n_estimators": 5, "max_depth": 2}},
                      sweep={"reg_alpha": [0, 1], "reg_lambda": [0]}, **overrides)


def test_a_library_call_names_the_parameter_that_starts_over_and_the_cli_its_option(tracking, tmp_path, capfd):
    import gbreg
    from gbreg import load_spec, run_study
    from gbreg.cli import app

    path = write_spec(tmp_path, _tiny_spec())
    first = run_study(load_spec(path), jobs=1, config=tracking)
    assert isinstance(first, gbreg.StudyOutcome) and first.n_ran == 2 and not first.interrupted
    capfd.readouterr()
    again = run_study(load_spec(path), jobs=1, config=tracking)
    printed = "".join(capfd.readouterr())
    assert again.n_ran == 0 and again.n_done_before == 2
    assert "2 done, 0 to run (run_study(..., fresh=True) starts over)" in printed
    assert "--fresh" not in printed

    result = CliRunner().invoke(app, ["run", str(path), "-j", "1"])
    assert result.exit_code == 0, result.output
    assert "2 done, 0 to run (use --fresh to start over)" in result.output


def test_the_outcome_class_is_public_and_imported_only_when_used():
    import subprocess
    import sys

    code = ("import sys, gbreg; assert 'gbreg.run.sweep' not in sys.modules and 'pandas' not in sys.modules; "
            "from gbreg.run.sweep import StudyOutcome as inner; "
            "assert gbreg.StudyOutcome is inner and 'StudyOutcome' in gbreg.__all__ and 'StudyOutcome' in dir(gbreg)")
    subprocess.run([sys.executable, "-c", code], check=True)
