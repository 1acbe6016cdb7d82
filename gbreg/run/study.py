"""``run_study``: a study in explicit phases.

1. start: local workers spawn (they import the libraries meanwhile), the data are loaded and checked,
   the executor gets the data set;
2. open the store: the experiment, runs left by a dead process, which trials are done;
3. start the parent run (or resume the unfinished one);
4. sweep and finish (:mod:`gbreg.run.sweep`).

Every check that can fail on the user's input (spec, data, library parameters, tracking store) runs
before the first run is created, so a mistake leaves nothing behind.
"""

from __future__ import annotations

import dataclasses
import logging
import shlex
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import yaml

from gbreg.catalogue import METRICS_BY_TASK
from gbreg.data import SKLEARN_SOURCES, Dataset, load_dataset
from gbreg.data_splits import load_and_split_job, split_job
from gbreg.errors import DataError, GbregError, SpecError, StudyFailed
from gbreg.machine import available_cores, threads_per_job
from gbreg.models.trial import TrialContext, TrialTask
from gbreg.plan import Trial, make_plan
from gbreg.run.control import RunControl
from gbreg.run.executor import TrialExecutor
from gbreg.run.local_processes import make_executor, start_local_pool, uses_local_pool
from gbreg.run.param_check import check_library_params, library_param_problems, param_check_input
from gbreg.run.parent_run import (
    complete_resumed_parent,
    refuse_if_running,
    study_params,
    tag_parent,
    trial_params,
)
from gbreg.run.progress import StudyProgress
from gbreg.run.records import SweepRecords
from gbreg.run.sweep import (
    StudyOutcome,
    Sweep,
    mark_failed,
    raise_if_failed,
    run_sweep,
    study_stopped,
    worker_answer,
)
from gbreg.spec.hypotheses import expectation_problems
from gbreg.spec.limits import check_work_limit, data_size_problems, leaf_size_warnings
from gbreg.spec.params import resolve_params
from gbreg.spec.schema import COUNTERPARTS_BY_TASK, DEFAULT_METRIC, Spec
from gbreg.spec.tracking_config import TrackingConfig, load_tracking_config
from gbreg.tracking.dead_runs import mark_dead_runs_failed
from gbreg.tracking.store import (
    check_store,
    ensure_experiment,
    import_mlflow,
    import_mlflow_meanwhile,
    open_store,
)
from gbreg.tracking.tracker import (
    SPEC_ARTIFACT,
    SPEC_INPUT_ARTIFACT,
    TAG_BASE_DIR,
    TAG_DATA_SHA,
    TAG_REPRODUCES,
    TAG_SPEC_SOURCE,
    StudyTracker,
    dataset_input,
    finished_trial_runs,
    latest_parent,
)


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

        resolved = self.spec.to_dict()
        resolved["task"] = self.task
        resolved["evaluation"]["metric"] = self.metric
        resolved["models"] = {lib: resolve_params(lib, params) for lib, params in self.spec.libraries().items()}
        resolved["data_sha256"] = self.data_sha
        return resolved


def task_expectation_problems(spec: Spec, task: str) -> list[tuple[str, str]]:
    """The hypotheses' metrics against the task the data gave, when the spec alone did not tell it (they
    were checked against every task's names): test_auc on a numeric target is refused."""
    if spec.known_task() is not None or not spec.expect:
        return []
    return expectation_problems(spec.model_copy(update={"task": task}))


def prepare_study(spec: Spec, check_libraries: bool = True, plan: list[Trial] | None = None,
                  dataset: Dataset | None = None, check_expect: bool = True) -> PreparedStudy:
    """Load the data, check the spec against it, and plan the trials (``plan``: the spec's, if already made;
    ``dataset``: the spec's data, if already loaded; ``check_expect`` False: the hypotheses are checked
    against the task by the caller, a suite whose template's {metric} waits for the data)."""
    if dataset is None:
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
    if check_expect:
        problems += task_expectation_problems(spec, task)
    if problems:
        raise SpecError(spec.source, problems)
    for warning in leaf_size_warnings(spec, len(dataset.y)):
        logging.getLogger("gbreg").warning(warning)
    prepared = PreparedStudy(spec, dataset, task, metric, plan or make_plan(spec), dataset.fingerprint())
    if check_libraries:
        check_library_params(prepared)
    return prepared


def run_study(spec: Spec, *, jobs: int | None = None, executor: str = "local", scheduler: str | None = None,
              fresh: bool = False, verbosity: int = 0, config: TrackingConfig | None = None,
              prepared: PreparedStudy | None = None, reproduces: str | None = None,
              raise_on_failure: bool = False, threads: int | None = None, allow_large: bool = False,
              control: RunControl | None = None, tags: dict[str, str] | None = None,
              resume_command: str | None = None) -> StudyOutcome:
    """Run (or resume) a study and log it to MLflow. Returns what happened; see :class:`StudyOutcome`.

    Trials already finished by an earlier run of the same spec on the same data are not run again
    (``fresh=True`` starts over). Ctrl-C (a KeyboardInterrupt) during the sweep does not raise: the runs in
    progress and the parent are marked KILLED and the outcome comes back with ``interrupted=True`` (run the
    study again to resume it); a KeyboardInterrupt before the sweep starts is raised as usual. Failed
    trials are in ``outcome.failures`` (``raise_on_failure=True``: a :class:`gbreg.errors.StudyFailed`
    instead). Local workers are spawned processes that import the caller's ``__main__`` module: a script
    calls this under ``if __name__ == "__main__":``.

    ``threads`` fixes the threads per trial (``gbreg reproduce`` passes the original's, since results
    are bit-for-bit equal only with the same thread count); by default workers x threads = cores.
    A study estimated to run longer than the spec's ``limits.max_hours`` here is refused (a UserInputError)
    unless ``allow_large`` (``gbreg run --yes``). ``control``: how the process's signals reach the
    study; the default installs nothing (:mod:`gbreg.run.control`), the command line passes its own.
    ``tags``: extra tags of the parent run (a suite's link to its suite run), set on a resumed or
    already finished parent too. ``resume_command``: what the messages of an interrupted study tell the user
    to run again (the command line passes its own, with its ``--set`` overrides; default ``gbreg run SPEC``).
    A caller that passes it is a command, and the "N done, M to run" line tells how to start over with
    ``--fresh``; a library call's line names the parameter, ``fresh=True``.
    """
    control = control or RunControl()
    started = _start(spec, jobs=jobs, executor=executor, scheduler=scheduler, verbosity=verbosity, config=config,
                     prepared=prepared, threads=threads, allow_large=allow_large, fresh=fresh)
    start_over = "use --fresh to start over" if resume_command is not None else "run_study(..., fresh=True) starts over"
    try:
        store = _open_store(started, fresh, start_over)
        if store.resume_id:
            _keep_parent_threads(started, store.previous)
    except BaseException:
        started.engine.close(cancel=True)
        raise
    if store.all_done:
        outcome = _already_done(started, store)
        tag_parent(store.client, outcome.parent_run_id, tags)
        return outcome
    if resume_command is None:
        resume_command = f"gbreg reproduce {reproduces}" if reproduces else f"gbreg run {shlex.quote(spec.source)}"
    tracker = _start_parent(started, store, reproduces, resume_command, tags)
    tasks = [task for task in started.tasks if task.trial_key not in store.done]
    threads = started.engine.threads  # what the executor chose (Dask sizes trainings to its cluster)
    sweep = Sweep(started.prepared, store.to_run, tasks, started.engine, tracker, started.progress,
                  threads, lambda trial: trial_params(trial, started.prepared, threads), resume_command)
    outcome = StudyOutcome(store.experiment_id, tracker.parent_run_id, len(started.prepared.plan),
                           len(store.done), 0)
    run_sweep(sweep, outcome, store.done, control)
    if raise_on_failure and not outcome.interrupted:
        raise_if_failed(outcome)
    return outcome


@dataclass
class _Started:
    """Phase 1's result: the study prepared and an executor holding its data set."""

    prepared: PreparedStudy
    config: TrackingConfig
    progress: StudyProgress
    engine: TrialExecutor
    executor_kind: str
    context: TrialContext  # what the trials run on, as given to the executor
    tasks: list[TrialTask]
    library_check: object  # the library check's future, or None when it was done already
    mlflow_imported: Callable[[], None]  # waits for MLflow's import, if it runs on a thread


@dataclass
class _OpenStore:
    """Phase 2's result: the study's experiment and what is left to run."""

    client: object
    experiment_id: str
    done: dict[str, str]  # trial key -> run id, finished by an earlier run
    to_run: list[Trial]
    previous: object  # the latest parent run of this spec and data, or None

    @property
    def all_done(self) -> bool:
        return not self.to_run and self.previous is not None and self.previous.info.status == "FINISHED"

    @property
    def resume_id(self) -> str | None:
        unfinished = self.previous is not None and self.previous.info.status != "FINISHED"
        return self.previous.info.run_id if unfinished else None


def _start(spec: Spec, *, jobs, executor, scheduler, verbosity, config, prepared, threads, allow_large,
           fresh) -> _Started:
    """Local workers start first and import the libraries while this process loads the data and checks
    the store; nothing is logged before then, so a mistake leaves nothing behind."""

    check_libraries = prepared is None
    plan = prepared.plan if prepared else make_plan(spec)
    jobs = max(1, min(jobs or available_cores(), len(plan)))
    pool = start_local_pool(jobs) if uses_local_pool(executor, jobs) else None
    mlflow_imported = import_mlflow_meanwhile(config) if pool is not None else _nothing_to_wait_for
    try:
        splitting = None
        if prepared is None:
            dataset, splitting = _load_data(spec, pool)
            prepared = prepare_study(spec, check_libraries=False, plan=plan, dataset=dataset)  # checked on a worker
        check_work_limit(spec, len(prepared.plan), *prepared.dataset.X.shape, yes=allow_large)
        config = config or load_tracking_config()
        progress = StudyProgress(verbosity, prepared.metric)
        check_store(config)  # the quick checks, before a scheduler is contacted
        splits = _splits(prepared, splitting)
        context = TrialContext(prepared.dataset.X, prepared.dataset.y, prepared.task, prepared.dataset.n_classes,
                               splits, prepared.metric, spec.seed, threads or threads_per_job(jobs),
                               trial_figures=spec.mlflow.trial_figures)
        engine = make_executor(executor, context, jobs, scheduler, threads=threads, pool=pool)
    except BaseException:
        if pool is not None:
            pool.close(cancel=True)
        raise
    tasks = [TrialTask(t.trial_key, t.kind, t.library, t.model, t.params) for t in prepared.plan]
    # on a worker when there are workers (they import the libraries anyway), else here and now
    checking = engine.call(library_param_problems, param_check_input(prepared)) if check_libraries else None
    if fresh or config.new_sqlite_store():
        engine.submit_ahead(tasks)  # nothing can be done yet: train while the store is opened and set up
    return _Started(prepared, config, progress, engine, executor, context, tasks, checking, mlflow_imported)


def _nothing_to_wait_for() -> None:
    """Without local workers MLflow is imported when the store is opened."""


def _load_data(spec: Spec, pool) -> tuple[Dataset, object]:
    """The spec's data set, and its splits as far as they are made: a worker's job (a future), its answer
    (splits or the error refusing them), or None (made here). With local workers, scikit-learn's data
    sets are loaded and every data set is split on a worker (:func:`gbreg.data_splits.load_and_split_job`)
    while MLflow is imported on a thread."""
    evaluation = spec.evaluation
    if pool is not None and spec.data.source in SKLEARN_SOURCES:
        loading = pool.call(load_and_split_job, (spec.data, spec.task, spec.seed, spec.base_dir, evaluation,
                                                 spec.repeats))
        answer = worker_answer(loading)  # a DataError of the data set is raised here, as when loaded here
        if answer is not None:
            return answer
    dataset = load_dataset(spec.data, spec.task, spec.seed, spec.base_dir)
    if pool is None:
        return dataset, None
    return dataset, pool.call(split_job, _split_job_input(dataset, spec))


def _split_job_input(dataset: Dataset, spec: Spec) -> tuple:
    return dataset.y, dataset.task, dataset.name, spec.evaluation, spec.seed, spec.repeats


def _splits(prepared: PreparedStudy, splitting) -> list:
    """The splits :func:`_load_data` had made (raising the error that refused them), else made here."""
    answer = worker_answer(splitting) if isinstance(splitting, Future) else splitting
    if answer is None:
        answer = split_job(_split_job_input(prepared.dataset, prepared.spec))
    if isinstance(answer, DataError):
        raise answer
    return answer


def _open_store(started: _Started, fresh: bool, start_over: str) -> _OpenStore:
    """The library check's answer, then the store: the experiment, dead runs marked, the trials done.
    ``start_over``: how the caller starts the study over (the command's option or the library's parameter)."""

    prepared, config, progress = started.prepared, started.config, started.progress
    spec = prepared.spec
    started.mlflow_imported()
    if started.library_check is not None:
        import_mlflow(config)  # while a worker checks
        check_library_params(prepared, worker_answer(started.library_check))
    client = open_store(config)
    lock = config.sqlite_path.with_suffix(".db.lock") if config.sqlite_path else None
    experiment_id = ensure_experiment(client, spec.experiment_name, config.artifact_location, lock)
    stopped: list[str] = []  # the errors processes stopped on without marking their runs
    stale = mark_dead_runs_failed(client, experiment_id, stopped)
    if stale:
        runs = " and ".join(f"{n} {kind} run(s)" for kind, n in sorted(stale.items(), key=lambda item: item[0] != "trial"))
        how = ("by a process that died" if not stopped else
               f"by a gbreg process that stopped on an error it could not record then ({'; '.join(stopped)})")
        progress.message(f"marked {runs} left RUNNING {how} as FAILED"
                         + ("; a study's run is resumed if its study runs again" if "study" in stale else ""))
    done = {} if fresh else finished_trial_runs(client, experiment_id, spec.name, prepared.data_sha)
    plan_keys = {t.trial_key for t in prepared.plan}
    done = {key: run_id for key, run_id in done.items() if key in plan_keys}
    to_run = [t for t in prepared.plan if t.trial_key not in done]
    previous = None if fresh else latest_parent(client, experiment_id, spec.sha256())
    previous_sha = previous.data.tags.get(TAG_DATA_SHA) if previous is not None else None
    if previous_sha and previous_sha != prepared.data_sha:  # its trials are not this data's: say why
        progress.message(f"the data changed since run {previous.info.run_id} (data sha256 {previous_sha[:12]}… "
                         f"now {prepared.data_sha[:12]}…): starting a new parent run")
        previous = None
    if previous is not None:
        refuse_if_running(previous, spec.name, config)
    if done or (previous is not None and previous.info.status != "FINISHED"):
        progress.message(f"{len(done)} done, {len(to_run)} to run ({start_over})")
    return _OpenStore(client, experiment_id, done, to_run, previous)


def _keep_parent_threads(started: _Started, parent) -> None:
    """A resumed study trains its remaining trials with the thread count its parent run recorded (its
    ``n_threads`` param, which cannot change): a library's results depend on it in their last bits, so
    every trial of the study is then trained alike and ``gbreg reproduce`` (which reruns with that count)
    matches them all. When this run's parallelism would give another count, one line says so. Nothing has
    been trained yet: the workers read the context at their first trial (Dask's is shipped again)."""
    recorded = str(parent.data.params.get("n_threads", ""))
    engine = started.engine
    if not recorded.isdigit() or int(recorded) < 1 or int(recorded) == engine.threads:
        return
    would_give, threads = engine.threads, int(recorded)
    started.context = dataclasses.replace(started.context, threads=threads)
    engine.provide(started.context)
    parallelism = (f"this Dask cluster's {engine.jobs} worker thread(s)" if started.executor_kind == "dask"
                   else f"this run's {engine.jobs} job(s)")
    started.progress.message(
        f"resuming with {threads} thread(s) per trial, as parent run {parent.info.run_id} recorded ({parallelism} "
        f"would give {would_give}): a study's trials all train with one thread count, so that their results "
        "are alike and `gbreg reproduce` matches them")


def _already_done(started: _Started, store: _OpenStore) -> StudyOutcome:
    """Every trial is done and the parent FINISHED: nothing runs; the results are read from the store."""
    started.engine.close(cancel=True)
    plan = started.prepared.plan
    outcome = StudyOutcome(store.experiment_id, store.previous.info.run_id, len(plan), len(store.done), 0)
    outcome.results = SweepRecords().results_frame(plan, store.client, store.done)  # all read back
    done = "the trial is done" if len(plan) == 1 else f"all {len(plan):,} trials are done"
    started.progress.message(f"{done}; results are in run {store.previous.info.run_id}")
    return outcome


def _start_parent(started: _Started, store: _OpenStore, reproduces: str | None, resume_command: str,
                  tags: dict[str, str] | None = None) -> StudyTracker:
    """The parent run (or the unfinished one it resumes) with the study's params, spec and data set.

    A write that fails here (an artifact folder that cannot be written, the store refusing) ends as one
    that fails during the sweep does: the parent FAILED with the error, one line saying how to resume
    (:func:`gbreg.run.sweep.study_stopped`), exit status 1."""
    prepared, engine = started.prepared, started.engine
    spec = prepared.spec
    tracker = StudyTracker(store.client, store.experiment_id, spec.name, spec.sha256(), prepared.data_sha)
    try:
        extra_tags = {TAG_SPEC_SOURCE: spec.source, TAG_BASE_DIR: str(spec.base_dir.resolve())}
        if reproduces:
            extra_tags[TAG_REPRODUCES] = reproduces
        extra_tags.update(tags or {})
        resolved = yaml.safe_dump(prepared.resolved_spec(), sort_keys=False, allow_unicode=True)
        params = study_params(prepared, engine.jobs, engine.threads, started.executor_kind)
        tracker.start_parent(params, resolved, dataset_input(prepared.dataset), extra_tags,
                             resume_run_id=store.resume_id)
        # the spec exactly as validated: what `gbreg reproduce` reruns (same trial keys)
        spec_input = yaml.safe_dump(spec.input_dict(), sort_keys=False, allow_unicode=True)
        if store.resume_id:
            tag_parent(store.client, store.resume_id, tags)
            complete_resumed_parent(tracker, {SPEC_ARTIFACT: resolved, SPEC_INPUT_ARTIFACT: spec_input},
                                     lambda: dataset_input(prepared.dataset))
            started.progress.message(f"resuming parent run {store.resume_id}")
        else:
            tracker.log_text(tracker.parent_run_id, spec_input, SPEC_INPUT_ARTIFACT)
    except BaseException as exc:
        engine.close(cancel=True)
        if isinstance(exc, KeyboardInterrupt) or not isinstance(exc, Exception):
            raise
        if tracker.parent_run_id is None:  # nothing was written: the error, and the command to run again
            if isinstance(exc, GbregError):
                raise
            cause = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
            raise StudyFailed(f"the study could not start its parent run: {cause}; nothing was logged; after "
                              f"fixing the cause, run again: {resume_command}") from exc
        unmarked = mark_failed(tracker, [], started.progress, exc, warn=False)
        raise study_stopped(exc, resume_command, unmarked) from exc
    return tracker


__all__ = ["PreparedStudy", "StudyOutcome", "prepare_study", "run_study"]
