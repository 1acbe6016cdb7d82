"""What an interrupted ``gbreg run`` tells the user to run again: the same study, so the same ``--set``
overrides (they change the plan and the study's name), executor and jobs; never ``--fresh``."""

from __future__ import annotations

import shlex
from pathlib import Path

from conftest import small_spec, write_spec

from gbreg.cli_options import ExecutorKind, run_again_command
from gbreg.plan import make_plan
from gbreg.spec.validation import load_spec


def test_the_hint_repeats_the_overrides_that_make_the_study(tmp_path) -> None:
    spec_path = write_spec(tmp_path, small_spec())
    overrides = ["name=other_study", "sweep.reg_alpha=[0, 2, 20]"]
    hint = run_again_command(["gbreg", "run"], spec_path, overrides, 1, ExecutorKind("local"), None, False)
    words = shlex.split(hint)
    assert words[:3] == ["gbreg", "run", str(spec_path)]
    assert words[3:] == ["--set", "name=other_study", "--set", "sweep.reg_alpha=[0, 2, 20]", "-j", "1",
                         "--executor", "local"]
    # run as the hint says, the spec gives the interrupted study's plan, not the file's own
    again = load_spec(Path(words[2]), [words[4], words[6]])
    interrupted = load_spec(spec_path, overrides)
    assert again.name == "other_study"
    assert [t.trial_key for t in make_plan(again)] == [t.trial_key for t in make_plan(interrupted)]
    assert [t.trial_key for t in make_plan(again)] != [t.trial_key for t in make_plan(load_spec(spec_path))]


def test_the_hint_of_a_plain_run_is_the_spec_alone(tmp_path) -> None:
    assert run_again_command(["gbreg", "run"], Path("studies/my study.yaml"), None, None, None, None, False) == \
        "gbreg run 'studies/my study.yaml'"
    assert run_again_command(["gbreg", "run"], Path("s.yaml"), [], None, ExecutorKind("dask"), "tcp://h:8786", True) == \
        "gbreg run s.yaml --executor dask --scheduler tcp://h:8786 --yes"
