"""The Dask executor on real ``LocalCluster`` worker processes: same results as the local runner, and a
study that loses a worker mid-trial still completes (the trial is retried, logged once).

Why real clusters: what can go wrong here (scattering, spawned workers, worker deaths, the scheduler's
retry accounting) lives in the processes a mock would replace.
"""

from __future__ import annotations

import os
import signal
import sys

import pytest
from conftest import small_spec, write_spec
from distributed.diagnostics.plugin import SchedulerPlugin, WorkerPlugin

from gbreg.run.dask_cluster import TASK_KEY_PREFIX, DaskExecutor, SchedulerError, threads_per_trial

TIMING_COLUMNS = {"fit_seconds", "fit_seconds_std"}  # wall clock: the only numbers allowed to differ


def _load(tmp_path, spec: dict, name: str):
    from gbreg.spec.validation import load_spec

    return load_spec(write_spec(tmp_path, spec, name))


def _comparable(results):
    """The results table without run ids (new runs) and wall-clock timings."""
    dropped = [c for c in results.columns if c in TIMING_COLUMNS or c == "run_id"]
    return results.drop(columns=dropped).sort_values("trial_key").reset_index(drop=True)


@pytest.mark.slow  # two spawned pools and a LocalCluster: ~20 s on 2 cores
def test_dask_study_on_local_cluster_equals_local_run(tracking, tmp_path) -> None:
    import pandas as pd

    from gbreg.run.study import run_study

    local = run_study(_load(tmp_path, small_spec(mlflow={"experiment": "local"}), "local.yaml"),
                      jobs=2, executor="local", verbosity=-1)
    dask = run_study(_load(tmp_path, small_spec(mlflow={"experiment": "dask"}), "dask.yaml"),
                     jobs=2, executor="dask", verbosity=-1)

    assert not local.failures and not dask.failures
    assert len(dask.results) == len(local.results) == 12
    assert set(dask.results["status"]) == {"FINISHED"}
    assert dask.results["test_rmse"].notna().all()
    assert dask.results["fit_seconds"].gt(0).all()
    pd.testing.assert_frame_equal(_comparable(dask.results), _comparable(local.results), check_exact=True)


# ---------------------------------------------------------------------- a cluster that loses workers


TRIAL_STARTED = "gbreg-test-trial-started"  # the event topic a worker logs when it starts a trial


class TrialStartReporter(WorkerPlugin):
    """A worker plugin: the moment a worker starts executing a gbreg trial, it logs an event (with its pid)
    that the scheduler passes on to subscribed clients."""

    def setup(self, worker) -> None:
        self.worker = worker

    def transition(self, key, start, finish, **kwargs) -> None:
        if finish == "executing" and str(key).startswith(TASK_KEY_PREFIX):
            self.worker.log_event(TRIAL_STARTED, {"pid": os.getpid(), "key": str(key)})


@pytest.fixture
def cluster(module_cluster):
    """The module's cluster with both workers up (a test may leave one restarting after a kill)."""
    from distributed import Client

    with Client(module_cluster.scheduler_address, set_as_default=False) as client:
        # a nanny restarts its worker in seconds; the timeout only guards against a hang on a loaded machine
        client.wait_for_workers(2, timeout=180)
    return module_cluster


@pytest.fixture(scope="module")
def module_cluster():
    """Two single-threaded worker processes; a trial may survive one worker death (allowed-failures 1),
    and each worker holds one task at a time (saturation 1.0), so a death only touches the trial it ran."""
    import dask
    from distributed import LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": 1,
                          "distributed.scheduler.worker-saturation": 1.0}):
        local_cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    import cloudpickle
    from distributed import Client

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/
    with Client(local_cluster, set_as_default=False) as client:  # restarted workers get it from the scheduler
        client.register_plugin(TrialStartReporter(), name="trial-start-reporter")
    yield local_cluster
    local_cluster.close()


def _slow_spec(**overrides) -> dict:
    """Trials of ~0.5 s each on one thread, long enough to be killed in the middle."""
    return small_spec(
        data={"source": "synthetic", "generator": "friedman1", "params": {"n_samples": 4000, "n_features": 10}},
        models={"xgboost": {"n_estimators": 150, "max_depth": 6, "learning_rate": 0.1}},
        sweep={"reg_alpha": [0, 1, 10], "reg_lambda": [0, 10]}, **overrides)


class WorkerKiller(SchedulerPlugin):
    """SIGKILLs the worker that starts the first gbreg trial (or every worker, ``everyone=True``) as soon as
    its start event reaches the scheduler, while the trial is executing; inside ``with``, once. A plugin
    of the in-process scheduler: it sees every event from the moment it is added."""

    name = "gbreg-test-worker-killer"

    def __init__(self, cluster, everyone: bool = False):
        self.scheduler = cluster.scheduler
        self.everyone = everyone
        self.killed_pids: list[int] = []
        self.workers_lost = 0  # workers the scheduler removed after the kill (a restarted one may die again)

    def __enter__(self) -> WorkerKiller:
        self.scheduler.add_plugin(self, name=self.name)
        return self

    def __exit__(self, *exc) -> None:
        self.scheduler.remove_plugin(name=self.name)

    def log_event(self, topic: str, msg) -> None:  # runs on the scheduler's event loop, one event at a time
        if topic != TRIAL_STARTED or self.killed_pids:
            return
        for pid in [w.pid for w in self.scheduler.workers.values()] if self.everyone else [msg["pid"]]:
            os.kill(pid, signal.SIGKILL)
            self.killed_pids.append(pid)

    def remove_worker(self, scheduler, worker: str, **kwargs) -> None:
        if self.killed_pids:
            self.workers_lost += 1


def _retried_trials(scheduler) -> int:
    """How many times the scheduler rescheduled a gbreg trial because its worker died."""
    return sum(prefix.suspicious for name, prefix in scheduler.task_prefixes.items()
               if name.startswith(TASK_KEY_PREFIX))


@pytest.mark.slow  # a worker restart (spawn + imports) is a few seconds
def test_killing_a_worker_mid_study_still_completes_it(tracking, tmp_path, cluster) -> None:
    from mlflow.tracking import MlflowClient

    from gbreg.run.study import run_study
    from gbreg.tracking.tracker import TAG_KIND, TAG_TRIAL_KEY

    retried_before = _retried_trials(cluster.scheduler)
    with WorkerKiller(cluster) as killer:
        outcome = run_study(_load(tmp_path, _slow_spec(), "spec.yaml"), jobs=2, executor="dask",
                            scheduler=cluster.scheduler_address, verbosity=-1)

    assert len(killer.killed_pids) == 1, "no worker reported a trial start"
    assert _retried_trials(cluster.scheduler) > retried_before  # the kill hit a running trial
    assert killer.killed_pids[0] not in {w.pid for w in cluster.scheduler.workers.values()}
    assert not outcome.failures and outcome.n_ran == 6
    client = MlflowClient(tracking_uri=tracking.tracking_uri)
    children = client.search_runs([outcome.experiment_id], filter_string=f"tags.`{TAG_KIND}` = 'booster'")
    assert sorted(run.info.status for run in children) == ["FINISHED"] * 6
    assert len({run.data.tags[TAG_TRIAL_KEY] for run in children}) == 6  # exactly one run per trial
    assert set(outcome.results["status"]) == {"FINISHED"}


def die_on_doomed_trial(task, context):
    """A trial function whose 'doomed' trial kills the worker process running it, every time."""
    from gbreg.models.trial import run_trial

    if task.trial_key == "doomed":
        os._exit(17)
    return run_trial(task, context)


@pytest.mark.slow
def test_trial_that_keeps_killing_workers_is_recorded_failed_and_the_cluster_goes_on(tmp_path, cluster) -> None:
    import cloudpickle

    from gbreg.models.trial import TrialTask, run_trial

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/
    context, tasks = _context_and_tasks(tmp_path, small_spec())
    tasks = tasks[::4]
    doomed = TrialTask("doomed", "booster", "xgboost", "xgboost", dict(tasks[0].params))
    submitted: list[str] = []

    executor = DaskExecutor(context, scheduler=cluster.scheduler_address, trial_function=die_on_doomed_trial)
    try:
        # Alone, so the deaths it causes cannot count against trials waiting on the same worker.
        doomed_results = list(executor.run([doomed], on_submit=lambda t: submitted.append(t.trial_key)))
        results = {r.trial_key: r for r in executor.run(tasks, on_submit=lambda t: submitted.append(t.trial_key))}
    finally:
        executor.close()

    assert [r.trial_key for r in doomed_results] == ["doomed"]
    assert doomed_results[0].error.startswith("KilledWorker"), doomed_results[0].error
    assert sorted(submitted) == sorted(["doomed", *results]) and len(results) == len(tasks) == 3
    for task in tasks:  # the workers that replaced the dead ones compute what this process computes
        inline = run_trial(task, context)
        assert results[task.trial_key].ok
        assert _without_timings(results[task.trial_key].metrics) == _without_timings(inline.metrics)


@pytest.mark.slow
def test_losing_every_worker_at_once_ships_the_data_set_again(tmp_path, cluster) -> None:
    context, tasks = _context_and_tasks(tmp_path, _slow_spec())
    executor = DaskExecutor(context, scheduler=cluster.scheduler_address)
    # The scheduler removes the two killed workers one after the other, and may hand the first one's
    # trial to the second before it sees that one dead too: two deaths for one trial, which the cluster's
    # single allowed failure would turn into a KilledWorker. One more is allowed here (gbreg's own
    # LocalCluster allows 3), so the test is about the data set, not that race.
    allowed, cluster.scheduler.allowed_failures = cluster.scheduler.allowed_failures, 2
    try:
        with WorkerKiller(cluster, everyone=True) as killer:
            results = list(executor.run(tasks))
    finally:
        cluster.scheduler.allowed_failures = allowed
        executor.close()

    assert len(killer.killed_pids) == 2, killer.killed_pids
    # the data set died with the workers, so it was sent again: once per loss, not once per trial (a nanny
    # may lose its restarted worker once more before the study ends, which costs one more shipment)
    assert 2 <= executor.context_shipments <= 1 + killer.workers_lost
    assert sorted(r.trial_key for r in results) == sorted(t.trial_key for t in tasks)
    assert [r.error for r in results if not r.ok] == []
    assert all(r.metrics["test_rmse"] > 0 for r in results)


def _context_and_tasks(tmp_path, spec: dict):
    """What the runner hands an executor for ``spec``: the context (one thread) and one task per trial."""
    from gbreg.data_splits import make_splits
    from gbreg.models.trial import TrialContext, TrialTask
    from gbreg.run.study import prepare_study

    prepared = prepare_study(_load(tmp_path, spec, "spec.yaml"))
    evaluation = prepared.spec.evaluation
    splits = make_splits(prepared.dataset, evaluation.split, evaluation.test_size, evaluation.folds,
                         prepared.spec.seed, prepared.spec.repeats)
    context = TrialContext(prepared.dataset.X, prepared.dataset.y, prepared.task, prepared.dataset.n_classes,
                           splits, prepared.metric, prepared.spec.seed, threads=1)
    return context, [TrialTask(t.trial_key, t.kind, t.library, t.model, t.params) for t in prepared.plan]


def _without_timings(metrics: dict) -> dict:
    return {name: value for name, value in metrics.items() if name not in TIMING_COLUMNS}


def test_unreachable_scheduler_is_a_clear_error(tracking) -> None:
    from gbreg.tracking.server import free_port

    address = f"tcp://127.0.0.1:{free_port()}"
    with pytest.raises(SchedulerError, match=f"Dask scheduler {address} cannot be reached") as caught:
        DaskExecutor(None, scheduler=address, connect_timeout=1.5)
    assert caught.value.exit_code == 2
    # the timeout given is the one Dask used (not its default, not CONNECT_TIMEOUT_S): it gave up after it
    assert f"Timed out trying to connect to {address} after 1.5 s" in str(caught.value)


@pytest.mark.parametrize(("workers", "expected"), [
    ({"a": ("h1", 8, 1), "b": ("h1", 8, 1)}, 4),  # two 1-thread workers on an 8-core host
    ({"a": ("h1", 8, 4), "b": ("h2", 2, 1)}, 2),  # the tightest host decides
    ({"a": ("h1", 2, 4)}, 1),  # more worker threads than cores: never below 1
])
def test_threads_per_trial_shares_each_hosts_cores(workers, expected) -> None:
    facts = {address: {"host": host, "cores": cores} for address, (host, cores, _) in workers.items()}
    nthreads = {address: threads for address, (_, _, threads) in workers.items()}
    assert threads_per_trial(facts, nthreads) == expected
