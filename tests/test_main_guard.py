"""A script that starts a study at import is refused before any worker is spawned: spawned workers import
the script again, and without the ``__main__`` guard every worker died starting the study anew (each
trial logged FAILED under a screen of tracebacks). Real scripts, run by a real interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap

import pytest
import yaml
from conftest import small_spec

from gbreg.run.main_guard import _inside_main_guard

pytestmark = pytest.mark.slow

STUDY = small_spec(name="guard", models={"xgboost": {"n_estimators": 5, "max_depth": 2}},
                   sweep={"reg_alpha": [0, 1, 2]})


def _run_script(folder, body: str, *args: str) -> subprocess.CompletedProcess:
    (folder / "study.yaml").write_text(yaml.safe_dump(STUDY))
    (folder / "mlflow.yaml").write_text(yaml.safe_dump({"tracking_uri": "sqlite:///mlflow.db",
                                                        "artifact_location": "mlartifacts"}))
    (folder / "my_study.py").write_text(textwrap.dedent(body))
    return subprocess.run([sys.executable, *args], cwd=folder, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("body", [
    """
    from gbreg import load_spec, run_study
    outcome = run_study(load_spec("study.yaml"), jobs=2)
    """,
    """
    from gbreg import load_spec, run_study

    def main():
        return run_study(load_spec("study.yaml"), jobs=2)

    main()
    """,
])
@pytest.mark.parametrize("how", [["my_study.py"], ["-m", "my_study"]])
def test_an_unguarded_script_is_refused_before_anything_is_spawned_or_written(tmp_path, body, how):
    ran = _run_script(tmp_path, body, *how)
    assert ran.returncode == 1
    assert ran.stderr.count("the script starts a study when it is imported") == 1, ran.stderr
    assert 'Put the study under `if __name__ == "__main__":`' in ran.stderr
    assert "bootstrapping phase" not in ran.stderr  # no worker was started
    assert not (tmp_path / "mlflow.db").exists()


def test_the_guarded_script_runs_its_study_on_workers(tmp_path):
    ran = _run_script(tmp_path, """
    from gbreg import load_spec, run_study

    if __name__ == "__main__":
        outcome = run_study(load_spec("study.yaml"), jobs=2, verbosity=-1)
        print(outcome.n_ran, len(outcome.failures))
    """, "my_study.py")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["3", "0"]


@pytest.mark.parametrize(("source", "line", "inside"), [
    ('if __name__ == "__main__":\n    run()\n', 2, True),
    ('if "__main__" == __name__:\n    x = 1\n    run()\n', 3, True),
    ('if __name__ != "__main__":\n    run()\n', 2, False),
    ('run()\nif __name__ == "__main__":\n    pass\n', 1, False),
])
def test_the_guard_is_recognised_in_either_order_and_only_around_the_call(source, line, inside):
    assert _inside_main_guard(ast.parse(source), line) is inside
