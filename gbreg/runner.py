"""``run_study``: spec -> data and plan -> checks -> tracking store -> execute -> log -> post-study.

Every check that can fail on the user's input (spec, data, library parameters, tracking store) runs
before the first run is created, so a mistake leaves nothing behind.
"""

from __future__ import annotations

import gc
import signal
import sys
import threading
from dataclasses import dataclass, field

import pandas as pd
import yaml

from gbreg.config import TrackingConfig, load_tracking_config
from gbreg.data import Dataset, load_dataset, make_splits
from gbreg.errors import GbregError, SpecError, StudyFailed
from gbreg.limits import check_work_limit, data_size_problems
from gbreg.plan import Trial, make_plan
from gbreg.spec import COUNTERPARTS_BY_TASK, DEFAULT_METRIC, METRICS_BY_TASK, Spec
from gbreg.sweep_records import SweepRecords
from gbreg.track import TAG_ERROR


@dataclass
class PreparedStudy:
    spec: Spec
    dataset: Dataset
    task: str
    metric: str
    plan: list[Trial]
    data_sha: str

    def resolved_spec(self) -> dict:
        """The spec as run: task, metric and every model's parameters resolved."""
        from gbreg.params import resolve_params

        resolved = self.spec.to_dict()
        resolved["task"] = self.task
        resolved["evaluation"]["metric"] = self.metric
        resolved["models"] = {lib: resolve_params(lib, params) for lib, params in self.spec.libraries().items()}
        resolved["data_sha256"] = self.data_sha
        return resolved


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


def prepare_study(spec: Spec, check_libraries: bool = True, plan: list[Trial] | None = None) -> PreparedStudy:
    """Load the data, check the spec against it, and plan the trials (``plan``: the spec's, if already made)."""
    dataset = load_dataset(spec.data, spec.task, spec.seed, spec.base_dir)
    task = dataset.task
    metric = spec.evaluation.metric or DEFAULT_METRIC[task]
    problems = []
    if metric not in METRICS_BY_TASK[task]:
        problems.append(("evaluation.metric", f"{metric!r} does not fit the task {task!r} (inferred from the "
                         f"target); expected one of {', '.join(METRICS_BY_TASK[task])}"))
    for i, name in enumerate(spec.counterparts):
        if name not in COUNTERPARTS_BY_TASK[task]:
            problems.append((f"counterparts[{i}]", f"{name!r} does not fit the task {task!r}; expected one of "
                             f"{', '.join(COUNTERPARTS_BY_TASK[task])}"))
    problems += data_size_problems(spec, dataset)
    if problems:
        raise SpecError(spec.source, problems)
    prepared = PreparedStudy(spec, dataset, task, metric, plan or make_plan(spec), dataset.fingerprint())
    if check_libraries:
        from gbreg.param_check import check_library_params

        check_library_params(prepared)
    return prepared


def run_study(spec: Spec, *, jobs: int | None = None, executor: str = "local", scheduler: str | None = None,
              fresh: bool = False, verbosity: int = 0, config: TrackingConfig | None = None,
              prepared: PreparedStudy | None = None, reproduces: str | None = None,
              raise_on_failure: bool = False, threads: int | None = None, allow_large: bool = False) -> StudyOutcome:
    """Run (or resume) a study and log it to MLflow. Returns what happened; see :class:`StudyOutcome`.

    ``threads`` fixes the threads per trial (``gbreg reproduce`` passes the original's, since results
    are bit-for-bit equal only with the same thread count); by default workers x threads = cores.
    A study estimated to run longer than the spec's ``limits.max_hours`` here is refused (a UserInputError)
    unless ``allow_large`` (``gbreg run --yes``).
    """
    with _CollectorPaused() as collector:
        return _run_study(spec, collector, jobs=jobs, executor=executor, scheduler=scheduler, fresh=fresh,
                          verbosity=verbosity, config=config, prepared=prepared, reproduces=reproduces,
                          raise_on_failure=raise_on_failure, threads=threads, allow_large=allow_large)


class _CollectorPaused:
    """Python's garbage collector, kept off the objects that live as long as the study.

    A full collection scans every object the process holds. While MLflow, SQLAlchemy, pandas and
    scikit-learn are imported the heap grows fast and a full collection runs at every 25% of growth
    (about 0.6 s of CPU in all); during the sweep they recur and scan it all again (about 1.5 s over a
    72-trial study). That CPU is taken from the workers' cores. So collection is off while the study
    starts, and when the sweep starts everything alive is frozen (left out of collections) and
    collection resumes for the objects made after; both are undone when the study ends.
    """

    def __enter__(self):
        self.active = _in_main_thread()  # from another thread the process's collector is not ours to tune
        self.was_enabled = gc.isenabled()
        if self.active:
            gc.disable()
        return self

    def sweep_starts(self) -> None:
        if self.active:
            gc.freeze()
            if self.was_enabled:
                gc.enable()

    def __exit__(self, *exc_info) -> None:
        if self.active:
            gc.unfreeze()
            if self.was_enabled:
                gc.enable()


def _run_study(spec: Spec, collector: _CollectorPaused, *, jobs, executor, scheduler, fresh, verbosity, config,
               prepared, reproduces, raise_on_failure, threads, allow_large) -> StudyOutcome:
    from gbreg.execute import (
        available_cores,
        make_executor,
        start_local_pool,
        threads_per_job,
        uses_local_pool,
    )
    from gbreg.progress import StudyProgress
    from gbreg.store import check_store, ensure_experiment, import_mlflow, open_store
    from gbreg.track import (
        SPEC_INPUT_ARTIFACT,
        TAG_BASE_DIR,
        TAG_DATA_SHA,
        TAG_REPRODUCES,
        TAG_SPEC_SOURCE,
        StudyTracker,
        dataset_input,
        finished_trial_runs,
        latest_parent,
        mark_dead_runs_failed,
    )
    from gbreg.trial import TrialContext, TrialTask

    check_libraries = prepared is None
    plan = prepared.plan if prepared else make_plan(spec)
    jobs = max(1, min(jobs or available_cores(), len(plan)))
    # Local workers start first and import the libraries while this process loads the data, checks the
    # store, and opens it; nothing is logged before then, so a mistake leaves nothing behind.
    pool = start_local_pool(jobs) if uses_local_pool(executor, jobs) else None
    try:
        prepared = prepared or prepare_study(spec, check_libraries=False, plan=plan)  # checked on a worker
        check_work_limit(spec, len(prepared.plan), *prepared.dataset.X.shape, yes=allow_large)
        config = config or load_tracking_config()
        progress = StudyProgress(verbosity, prepared.metric)
        check_store(config)  # the quick checks, before a scheduler is contacted
        fixed_threads, threads = threads, threads or threads_per_job(jobs)
        splits = make_splits(prepared.dataset, spec.evaluation.split, spec.evaluation.test_size,
                             spec.evaluation.folds, spec.seed, spec.repeats)
        context = TrialContext(prepared.dataset.X, prepared.dataset.y, prepared.task, prepared.dataset.n_classes,
                               splits, prepared.metric, spec.seed, threads)
        engine = make_executor(executor, context, jobs, scheduler, threads=fixed_threads, pool=pool)
    except BaseException:
        if pool is not None:
            pool.close(cancel=True)
        raise
    jobs, threads = getattr(engine, "jobs", jobs), getattr(engine, "threads", threads)  # what Dask chose
    checking = None
    tracker: StudyTracker | None = None  # set once the store is open
    if check_libraries and hasattr(engine, "call"):  # on a worker: it imports the libraries anyway
        from gbreg.param_check import library_param_problems, param_check_input

        checking = engine.call(library_param_problems, param_check_input(prepared))
    all_tasks = [TrialTask(t.trial_key, t.kind, t.library, t.model, t.params) for t in prepared.plan]
    if hasattr(engine, "submit_ahead") and (fresh or config.new_sqlite_store()):
        engine.submit_ahead(all_tasks)  # nothing can be done yet: train while the store is opened and set up
    try:
        if check_libraries:
            from gbreg.param_check import check_library_params

            if checking is not None:
                import_mlflow(config)  # while the worker checks
            check_library_params(prepared, _worker_answer(checking))
        client = open_store(config)
        lock = config.sqlite_path.with_suffix(".db.lock") if config.sqlite_path else None
        experiment_id = ensure_experiment(client, spec.experiment_name, config.artifact_location, lock)
        stale = mark_dead_runs_failed(client, experiment_id)
        if stale:
            progress.message(f"marked {stale} run(s) left RUNNING by a process that died as FAILED")

        spec_sha = spec.sha256()
        done = {} if fresh else finished_trial_runs(client, experiment_id, spec.name, prepared.data_sha)
        plan_keys = {t.trial_key for t in prepared.plan}
        done = {key: run_id for key, run_id in done.items() if key in plan_keys}
        to_run = [t for t in prepared.plan if t.trial_key not in done]
        outcome = StudyOutcome(experiment_id, None, len(prepared.plan), len(done), 0)
        previous = None if fresh else latest_parent(client, experiment_id, spec_sha)
        previous_sha = previous.data.tags.get(TAG_DATA_SHA) if previous is not None else None
        if previous_sha and previous_sha != prepared.data_sha:  # its trials are not this data's: say why
            progress.message(f"the data changed since run {previous.info.run_id} (data sha256 {previous_sha[:12]}… "
                             f"now {prepared.data_sha[:12]}…): starting a new parent run")
            previous = None
        if done or (previous is not None and previous.info.status != "FINISHED"):
            progress.message(f"{len(done)} done, {len(to_run)} to run (use --fresh to start over)")
        if not to_run and previous is not None and previous.info.status == "FINISHED":
            engine.close(cancel=True)
            outcome.parent_run_id = previous.info.run_id
            outcome.results = _results_frame(client, prepared.plan, done)
            progress.message(f"all {len(prepared.plan)} trials are done; results are in run "
                             f"{previous.info.run_id}")
            return outcome

        tracker = StudyTracker(client, experiment_id, spec.name, spec_sha, prepared.data_sha)
        resume_id = previous.info.run_id if previous is not None and previous.info.status != "FINISHED" else None
        extra_tags = {TAG_SPEC_SOURCE: spec.source, TAG_BASE_DIR: str(spec.base_dir.resolve())}
        if reproduces:
            extra_tags[TAG_REPRODUCES] = reproduces
        parent_params = _study_params(prepared, jobs, threads, executor)
        outcome.parent_run_id = tracker.start_parent(parent_params, yaml.safe_dump(
            prepared.resolved_spec(), sort_keys=False, allow_unicode=True), dataset_input(prepared.dataset), extra_tags,
            resume_run_id=resume_id)
        if not resume_id:  # the spec exactly as validated: what `gbreg reproduce` reruns (same trial keys)
            tracker.log_text(outcome.parent_run_id, yaml.safe_dump(spec.input_dict(), sort_keys=False, allow_unicode=True),
                             SPEC_INPUT_ARTIFACT)
    except BaseException as exc:
        engine.close(cancel=True)
        if tracker is not None and tracker.parent_run_id is not None and not isinstance(exc, KeyboardInterrupt):
            _mark_failed(tracker, [], progress, exc)
        raise
    if resume_id:
        progress.message(f"resuming parent run {resume_id}")

    by_key = {t.trial_key: t for t in to_run}
    tasks = [task for task in all_tasks if task.trial_key in by_key]
    run_ids: dict[str, str] = {}

    def on_submit(task: TrialTask) -> None:
        interrupts.check()
        trial = by_key[task.trial_key]
        start_params[task.trial_key] = _trial_params(trial, prepared, threads)
        run_ids[task.trial_key] = tracker.start_trial(trial, start_params[task.trial_key])

    def on_worker_died(lost: list[TrialTask]) -> None:
        progress.message(f"a worker process died; its pool was restarted and the {len(lost)} trial(s) in "
                         "flight are retried (once)")

    progress.start(len(to_run))
    start_params: dict[str, dict] = {}  # trial key -> the params its run started with
    records = SweepRecords()  # what is logged, kept for the steps after the sweep (never read back)
    interrupts = _Interrupts()
    collector.sweep_starts()
    error: Exception | None = None
    try:
        for result in engine.run(tasks, on_submit, on_worker_died):
            interrupts.check()  # a result made while Ctrl-C was swallowed is abandoned, not logged
            trial = by_key[result.trial_key]
            # the id leaves run_ids only once the run is FINISHED/FAILED: an interrupt while logging
            # still finds it and marks it KILLED, so a half-logged trial is never counted as done
            tracker.finish_trial(run_ids[result.trial_key], result)
            records.add(trial, run_ids.pop(result.trial_key), start_params.pop(result.trial_key), result)
            outcome.n_ran += 1
            if not result.ok:
                outcome.failures.append((trial.run_name, result.error))
            progress.trial_done(trial, result)
        interrupts.check()
        progress.stop()
        outcome.results = records.results_frame(prepared.plan, client, done)
        outcome.folds = records.folds_frame()
        outcome.sweep = records
        _after_study(tracker, prepared, outcome, progress, getattr(engine, "call", None))
        engine.close()
        summary = {"n_trials": len(prepared.plan), "n_failed": len(outcome.failures)}
        tracker.finish_parent("FINISHED", metrics=summary)
    except KeyboardInterrupt:
        outcome.interrupted = True
    except Exception as exc:
        if interrupts.requested:
            outcome.interrupted = True  # Ctrl-C inside SQLite or a library can surface as its error: still Ctrl-C
        else:
            error = exc
    finally:
        interrupts.restore()
        progress.stop()
    if error is not None:
        engine.close(cancel=True)
        _mark_failed(tracker, list(run_ids.values()), progress, error)
        raise _study_stopped(error, spec, reproduces) from error
    if outcome.interrupted:
        _stop_cleanly(engine, tracker, list(run_ids.values()), progress)
        again = f"rerun with: gbreg reproduce {reproduces}" if reproduces else f"resume with: gbreg run {spec.source}"
        progress.message(f"interrupted: {outcome.n_ran} trial(s) logged this time, {len(run_ids)} in progress "
                         f"abandoned (marked KILLED); {again}")
        return outcome
    if outcome.failures and raise_on_failure:
        raise StudyFailed(f"{len(outcome.failures)} of {len(prepared.plan)} trials failed")
    return outcome


def _worker_answer(future):
    """The result of a call made on a worker, or None (then the caller does the work itself) if the call
    was not made or its worker died."""
    from concurrent.futures.process import BrokenProcessPool

    if future is None:
        return None
    try:
        return future.result()
    except BrokenProcessPool:
        return None


class _Interrupts:
    """Ctrl-C and SIGTERM stop a study; the request is also remembered.

    A KeyboardInterrupt raised while a library runs a Python callback (XGBoost's data iterator is
    called through ctypes) is swallowed there, and the library then fails with an unrelated error.
    The remembered request turns that into a clean stop at the next check instead of a bogus FAILED
    trial and a study that carries on.
    """

    def __init__(self):
        self.requested = False
        self._previous: dict = {}
        self._previous_hook = sys.unraisablehook
        if not _in_main_thread():  # signals reach the main thread only; its owner decides what they do
            return
        self._previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        sys.unraisablehook = self._unraisable

    def _unraisable(self, unraisable) -> None:
        """The swallowed KeyboardInterrupt would print "Exception ignored ..." and a traceback: it is handled.
        So would an object the interrupt left half-built when it is freed (XGBoost's data iterator fails
        in ``__del__`` then): noise once a stop was requested."""
        if not (isinstance(unraisable.exc_value, KeyboardInterrupt) or self.requested):
            self._previous_hook(unraisable)

    def _handle(self, signum, frame):
        self.requested = True
        raise KeyboardInterrupt

    def check(self) -> None:
        if self.requested:
            raise KeyboardInterrupt

    def restore(self) -> None:
        if self.requested:  # half-built objects caught in reference cycles are freed now, under this hook
            gc.collect()
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        if self._previous:
            sys.unraisablehook = self._previous_hook


def _in_main_thread() -> bool:
    """Signal handlers can only be set from the main thread; a study run from another thread (a notebook's
    background task, a service) leaves the process's signals and collector alone."""
    return threading.current_thread() is threading.main_thread()


def _stop_cleanly(engine, tracker, in_flight: list[str], progress) -> None:
    """After Ctrl-C/SIGTERM: stop the workers, mark the abandoned trials and the parent KILLED.

    A second Ctrl-C is ignored meanwhile so that the marking is not cut short; if the store cannot be
    written, the runs stay RUNNING and the next ``gbreg run`` marks them FAILED.
    """
    progress.stop()
    ignoring = _in_main_thread()
    if ignoring:
        previous_sigint = signal.signal(signal.SIGINT, signal.SIG_IGN)
        previous_sigterm = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        if engine is not None:
            engine.close(cancel=True)
        for run_id in in_flight:
            tracker.kill_trial(run_id)
        tracker.kill_running_trials()
        tracker.finish_parent("KILLED")
    except Exception as exc:  # noqa: BLE001 - the interrupt is what the user must hear about
        progress.message(f"warning: could not mark the interrupted runs KILLED: {type(exc).__name__}: {exc}")
    finally:
        if ignoring:
            signal.signal(signal.SIGINT, previous_sigint)
            signal.signal(signal.SIGTERM, previous_sigterm)


def _mark_failed(tracker, in_flight: list[str], progress, error: BaseException) -> None:
    """After an error that stops the study: the trials in flight and the parent become FAILED with the
    error, so no run stays RUNNING. If the store itself is what failed, the runs stay RUNNING and the
    next ``gbreg run`` marks them FAILED (their process is gone by then)."""
    message = _one_line(error)
    try:
        for run_id in in_flight:
            tracker.kill_trial(run_id, "FAILED", message)
        tracker.kill_running_trials("FAILED", message)
        tracker.finish_parent("FAILED", tags={TAG_ERROR: message[:5000]})
    except Exception as exc:  # noqa: BLE001 - the first error is what the user must hear about
        progress.message(f"warning: could not mark the study's runs FAILED: {_one_line(exc)}")


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:300]}" if text else type(error).__name__


def _study_stopped(error: Exception, spec: Spec, reproduces: str | None) -> GbregError:
    """The one-line error a study that stopped on ``error`` ends with (a GbregError keeps its own)."""
    if isinstance(error, GbregError):
        return error
    again = f"gbreg reproduce {reproduces}" if reproduces else f"gbreg run {spec.source}"
    return StudyFailed(f"the study stopped: {_one_line(error)}; its runs in progress were marked FAILED; "
                       f"after fixing the cause, resume with: {again}")


def _results_frame(client, plan: list[Trial], done: dict[str, str]) -> pd.DataFrame:
    from gbreg.track import runs_frame

    run_ids = [done[t.trial_key] for t in plan if t.trial_key in done]
    if not run_ids:
        return pd.DataFrame()
    frame = runs_frame(client, run_ids)
    order = {t.trial_key: i for i, t in enumerate(plan)}
    return frame.sort_values("trial_key", key=lambda keys: keys.map(order)).reset_index(drop=True)


def _after_study(tracker, prepared: PreparedStudy, outcome: StudyOutcome, progress, submit=None) -> None:
    """Parent-run artifacts computed from the logged results."""
    from gbreg.track import RESULTS_ARTIFACT

    if outcome.results is not None and len(outcome.results):
        tracker.log_text(tracker.parent_run_id, outcome.results.to_csv(index=False), RESULTS_ARTIFACT)
    from gbreg.postprocess import after_study

    after_study(tracker, prepared, outcome, progress, submit)


def _study_params(prepared: PreparedStudy, jobs: int, threads: int, executor: str) -> dict:
    spec = prepared.spec
    params = {"seed": spec.seed, "repeats": spec.repeats, "task": prepared.task, "metric": prepared.metric,
              "n_trials": len(prepared.plan), "jobs": jobs, "n_threads": threads, "executor": executor,
              "n_rows": len(prepared.dataset.y), "n_features": prepared.dataset.X.shape[1],
              "libraries": ",".join(spec.libraries()), "counterparts": ",".join(spec.counterparts)}
    params.update(_data_eval_params(prepared))
    for axis, values in spec.sweep_values().items():
        params[f"sweep.{axis}"] = values
    return params


def _data_eval_params(prepared: PreparedStudy) -> dict:
    spec = prepared.spec
    params = {f"data.{k}": v for k, v in spec.data.model_dump(mode="json", exclude_none=True).items()}
    evaluation = spec.evaluation
    params["evaluation.split"] = evaluation.split
    if evaluation.split == "holdout":
        params["evaluation.test_size"] = evaluation.test_size
    else:
        params["evaluation.folds"] = evaluation.folds
    return params


def _trial_params(trial: Trial, prepared: PreparedStudy, threads: int) -> dict:
    params = {"library": trial.library, "model": trial.model, "kind": trial.kind, **trial.params,
              "seed": prepared.spec.seed, "repeats": prepared.spec.repeats, "task": prepared.task,
              "metric": prepared.metric, "n_threads": threads}
    params.update(_data_eval_params(prepared))
    return params


__all__ = ["PreparedStudy", "StudyOutcome", "prepare_study", "run_study"]
