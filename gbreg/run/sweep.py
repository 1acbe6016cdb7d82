"""The sweep: hand out every trial, log each result as it arrives, then the steps after the sweep.

This is the one loop over trials; whatever runs them is a :class:`gbreg.run.executor.TrialExecutor`. It
ends in one of three ways: done (the parent run FINISHED), interrupted (Ctrl-C or SIGTERM: the runs in
progress and the parent KILLED, the command says how to resume), or stopped by an error while logging
(the runs in progress and the parent FAILED with it, one line for the user). No run is left RUNNING.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from gbreg.errors import GbregError, StudyFailed
from gbreg.models.trial import TrialTask
from gbreg.plan import Trial
from gbreg.report.plots import prepare_drawing
from gbreg.report.plots.trial_figures import RepresentativeCandidates
from gbreg.run.after_sweep import after_study
from gbreg.run.control import RunControl
from gbreg.run.records import SweepRecords
from gbreg.tracking.dead_runs import note_unmarked_runs
from gbreg.tracking.server_client import TrackingServerAway
from gbreg.tracking.tracker import TAG_ERROR


@dataclass
class StudyOutcome:
    experiment_id: str
    parent_run_id: str | None
    n_trials: int
    n_done_before: int
    n_ran: int
    failures: list[tuple[str, str]] = field(default_factory=list)  # (run name, error)
    results: pd.DataFrame | None = None
    interrupted: bool = False
    folds: pd.DataFrame | None = None  # per-split rows (with run_id) of the trials run this time
    sweep: SweepRecords | None = None  # what this run logged, for the steps after the sweep
    report_failures: list[str] = field(default_factory=list)  # parent artifacts not made: "step: error"
    shrinkage_to_log: dict[str, dict[str, float]] = field(default_factory=dict)  # run id -> values not yet logged


@dataclass
class Sweep:
    """What the loop needs: the study as prepared (:class:`gbreg.run.study.PreparedStudy`), the trials to
    run, their executor and the tracker of the parent run."""

    prepared: object
    to_run: list[Trial]
    tasks: list[TrialTask]
    engine: object  # a TrialExecutor
    tracker: object  # a StudyTracker with its parent run started
    progress: object
    threads: int
    trial_params: object  # (trial) -> the params its run starts with
    resume_command: str  # what resumes the study: `gbreg run SPEC` (or `gbreg reproduce RUN_ID`)


def run_sweep(sweep: Sweep, outcome: StudyOutcome, done: dict[str, str], control: RunControl) -> StudyOutcome:
    """Run the trials, log them, make the parent's artifacts; ``done``: trials finished by an earlier run;
    ``control``: how the process's signals reach the loop (:mod:`gbreg.run.control`)."""
    by_key = {t.trial_key: t for t in sweep.to_run}
    run_ids: dict[str, str] = {}  # trial key -> its run, until the run is FINISHED or FAILED
    start_params: dict[str, dict] = {}  # trial key -> the params its run started with
    # what is logged, kept for the steps after the sweep (never read back)
    records = SweepRecords(candidates=RepresentativeCandidates(sweep.prepared.plan, sweep.prepared.metric))
    tracker, progress, engine = sweep.tracker, sweep.progress, sweep.engine

    def on_submit(task: TrialTask) -> None:
        control.check()
        trial = by_key[task.trial_key]
        start_params[task.trial_key] = sweep.trial_params(trial)
        run_ids[task.trial_key] = tracker.start_trial(trial, start_params[task.trial_key])

    def on_worker_died(lost: list[TrialTask]) -> None:
        progress.message(f"a worker process died; its pool was restarted and the {len(lost)} trial(s) in "
                         "flight run again (a trial whose worker dies twice while running it fails)")

    progress.start(len(sweep.to_run))
    control.sweep_starts()
    error: Exception | None = None
    drawing_prepared = False
    try:
        for result in engine.run(sweep.tasks, on_submit, on_worker_died):
            control.check()  # a result made while Ctrl-C was swallowed is abandoned, not logged
            trial = by_key[result.trial_key]
            # the id leaves run_ids only once the run is FINISHED/FAILED: an interrupt while logging
            # still finds it and marks it KILLED, so a half-logged trial is never counted as done
            tracker.finish_trial(run_ids[result.trial_key], result)
            records.add(trial, run_ids.pop(result.trial_key), start_params.pop(result.trial_key), result)
            outcome.n_ran += 1
            if not result.ok:
                outcome.failures.append((trial.run_name, result.error))
            progress.trial_done(trial, result)
            if not drawing_prepared and len(sweep.to_run) - outcome.n_ran < engine.jobs:
                drawing_prepared = True  # a worker is idle from now on: it gets the figures' imports done
                engine.call(prepare_drawing, None)
        control.check()
        progress.stop()
        _finish(sweep, outcome, records, done)
    except KeyboardInterrupt:
        outcome.interrupted = True
    except Exception as exc:
        if control.requested:
            outcome.interrupted = True  # Ctrl-C inside SQLite or a library can surface as its error: still Ctrl-C
        else:
            error = exc
    finally:
        control.sweep_ends()
        progress.stop()
    if error is not None:
        engine.close(cancel=True)
        unmarked = mark_failed(tracker, list(run_ids.values()), progress, error, warn=False)
        raise study_stopped(error, sweep.resume_command, unmarked) from error
    if outcome.interrupted:
        _stop_cleanly(engine, tracker, list(run_ids.values()), progress, control)
        progress.message(f"interrupted: {outcome.n_ran} trial(s) logged this time, {len(run_ids)} in progress "
                         f"abandoned (marked KILLED); {_again(sweep.resume_command)}")
    return outcome


def _finish(sweep: Sweep, outcome: StudyOutcome, records: SweepRecords, done: dict[str, str]) -> None:
    """After the last trial: the results from memory, the parent's artifacts, the parent FINISHED."""

    tracker, prepared = sweep.tracker, sweep.prepared
    outcome.results = records.results_frame(prepared.plan, tracker.client, done)
    outcome.folds = records.folds_frame(prepared.plan)
    outcome.sweep = records
    after_study(tracker, prepared, outcome, sweep.progress, sweep.engine.call)
    sweep.engine.close()
    tracker.finish_parent("FINISHED", metrics={"n_trials": len(prepared.plan), "n_failed": len(outcome.failures)})


def raise_if_failed(outcome: StudyOutcome) -> None:
    if outcome.failures:
        raise StudyFailed(f"{len(outcome.failures)} of {outcome.n_trials} trials failed")


def worker_answer(future):
    """The result of a call made on a worker, or None (then the caller does the work itself) if the call
    was not made or its worker died."""
    from concurrent.futures.process import BrokenProcessPool

    if future is None:
        return None
    try:
        return future.result()
    except BrokenProcessPool:
        return None


def _stop_cleanly(engine, tracker, in_flight: list[str], progress, control: RunControl) -> None:
    """After Ctrl-C/SIGTERM: stop the workers, mark the abandoned trials and the parent KILLED.

    Under the control's shield (the CLI ignores a second Ctrl-C meanwhile, so that the marking is not cut
    short); if the store cannot be written, the runs stay RUNNING and the next ``gbreg run`` marks them
    FAILED.
    """
    progress.stop()
    with control.shielded():
        try:
            if engine is not None:
                engine.close(cancel=True)
            for run_id in in_flight:
                tracker.kill_trial(run_id)
            tracker.kill_running_trials()
            tracker.finish_parent("KILLED")
        except Exception as exc:  # noqa: BLE001 - the interrupt is what the user must hear about
            progress.warning(f"could not mark the interrupted runs KILLED: {type(exc).__name__}: {exc}")


def mark_failed(tracker, in_flight: list[str], progress, error: BaseException,
                warn: bool = True) -> Exception | None:
    """After an error that stops the study: the trials in flight and the parent become FAILED with the
    error, so no run stays RUNNING; returns what prevented that, if anything. If the store itself is what
    failed, the runs stay RUNNING and the next run of the study on this machine marks them FAILED (their
    process is gone by then: :func:`gbreg.tracking.dead_runs.mark_dead_runs_failed`); ``warn``: say so here."""
    message = _one_line(error)
    try:
        for run_id in in_flight:
            tracker.kill_trial(run_id, "FAILED", message)
        tracker.kill_running_trials("FAILED", message)
        tracker.finish_parent("FAILED", tags={TAG_ERROR: message[:5000]})
    except Exception as exc:  # noqa: BLE001 - the first error is what the user must hear about
        note_unmarked_runs(tracker.parent_run_id, message)  # the next run records this error, not a death
        if warn:
            progress.warning(f"could not mark the study's runs FAILED: {_one_line(exc)}")
        return exc
    return None


def _one_line(error: BaseException, limit: int = 300) -> str:
    """The error's type and text on one line, cut after at most ``limit`` characters at a word boundary."""
    text = " ".join(str(error).split())
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0] + " …"
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def study_stopped(error: Exception, resume_command: str, unmarked: Exception | None = None) -> GbregError:
    """The one-line error (exit status 1: the study ran) a study that stopped on ``error`` ends with; a
    GbregError (the Dask scheduler lost, a permission withdrawn) keeps its words. ``unmarked``: what kept
    its runs in progress from being marked FAILED, if anything."""
    if isinstance(error, StudyFailed):
        return error
    cause = " ".join(str(error).split()) if isinstance(error, GbregError) else _one_line(error)
    runs = "its runs in progress were marked FAILED"
    if unmarked is not None:
        why = ("the tracking server still did not answer" if isinstance(unmarked, TrackingServerAway)
               else _one_line(unmarked, 120))
        runs = (f"its runs in progress could not be marked FAILED ({why}): the next run of this study on this "
                "machine marks them")
    return StudyFailed(f"the study stopped: {cause}; {runs}; after fixing the cause, resume with: {resume_command}")


def _again(resume_command: str) -> str:
    return f"{'rerun' if resume_command.startswith('gbreg reproduce') else 'resume'} with: {resume_command}"


