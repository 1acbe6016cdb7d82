"""What a study's runs record about it, and the check before an unfinished parent run is resumed.

The parent's params (the study's settings, the data and evaluation, the sweep), each trial run's params,
tags set on the parent, and what a resumed parent lacks. :func:`refuse_if_running`: a parent still being
run by another gbreg process is not resumed (two processes would train and log the same trials).
"""

from __future__ import annotations

from gbreg.errors import UserInputError
from gbreg.plan import Trial
from gbreg.spec.tracking_config import TrackingConfig
from gbreg.tracking.processes import running_elsewhere
from gbreg.tracking.store import retrying
from gbreg.tracking.tracker import TAG_HOST, TAG_PID, StudyTracker


def refuse_if_running(previous, study: str, config: TrackingConfig) -> None:
    """The unfinished parent run this would resume is another gbreg process's, still running: two
    processes on one study would train and log the same trials twice. Runs left RUNNING by a process on
    this host that is gone were marked FAILED just before; one on another host cannot be checked from
    here and, as there, is not taken for dead. Raises before anything is trained or written."""
    if previous.info.status != "RUNNING":
        return
    tags, run_id = previous.data.tags, previous.info.run_id
    host, pid = tags.get(TAG_HOST), tags.get(TAG_PID)
    who = running_elsewhere(host, pid)
    if who == "alive":
        raise UserInputError(
            f"study {study!r} is being run right now by gbreg process {pid} on this machine ({host}; parent run "
            f"{run_id}); wait for it to finish, or stop it (Ctrl-C, or kill {pid}: its finished trials are "
            "kept) and run this again to resume")
    if who == "unknown":
        raise UserInputError(
            f"study {study!r} may be running right now: its parent run {run_id} is RUNNING in gbreg process "
            f"{pid} on host {host}, which cannot be checked from here; wait for it to finish there, or stop "
            f"it (its finished trials are kept) and run this again. If that process is gone (its machine "
            f"crashed), run this on {host} once (it marks the run FAILED and resumes), or mark it FAILED from "
            f"here: python -c \"from mlflow import MlflowClient; MlflowClient('{config.tracking_uri}')"
            f".set_terminated('{run_id}', 'FAILED')\"")


def tag_parent(client, run_id: str | None, tags: dict[str, str] | None) -> None:
    for key, value in (tags or {}).items() if run_id else ():
        retrying(lambda key=key, value=value: client.set_tag(run_id, key, value))


def complete_resumed_parent(tracker: StudyTracker, texts: dict[str, str], dataset) -> None:
    """What a parent stopped while it started (an artifact folder that could not be written) lacks: its
    spec files and data set, written now (the spec and data are the same: that is how it was found)."""
    run_id, client = tracker.parent_run_id, tracker.client
    logged = {artifact.path for artifact in retrying(lambda: client.list_artifacts(run_id))}
    for name, text in texts.items():
        if name not in logged:
            tracker.log_text(run_id, text, name)
    if not retrying(lambda: client.get_run(run_id)).inputs.dataset_inputs:
        datasets = [dataset()]
        retrying(lambda: client.log_inputs(run_id, datasets=datasets))


def study_params(prepared, jobs: int, threads: int, executor: str) -> dict:
    """The parent run's params. ``prepared``: the study's :class:`gbreg.run.study.PreparedStudy` (not
    imported: the study module imports this one)."""
    spec = prepared.spec
    params = {"seed": spec.seed, "repeats": spec.repeats, "task": prepared.task, "metric": prepared.metric,
              "n_trials": len(prepared.plan), "jobs": jobs, "n_threads": threads, "executor": executor,
              "n_rows": len(prepared.dataset.y), "n_features": prepared.dataset.X.shape[1],
              "libraries": ",".join(spec.libraries()), "counterparts": ",".join(spec.counterparts)}
    params.update(data_eval_params(prepared))
    for axis, values in spec.sweep_values().items():
        params[f"sweep.{axis}"] = values
    return params


def data_eval_params(prepared) -> dict:
    spec = prepared.spec
    params = {f"data.{k}": v for k, v in spec.data.model_dump(mode="json", exclude_none=True).items()}
    evaluation = spec.evaluation
    params["evaluation.split"] = evaluation.split
    if evaluation.split == "holdout":
        params["evaluation.test_size"] = evaluation.test_size
    else:
        params["evaluation.folds"] = evaluation.folds
    return params


def trial_params(trial: Trial, prepared, threads: int) -> dict:
    params = {"library": trial.library, "model": trial.model, "kind": trial.kind, **trial.params,
              "seed": prepared.spec.seed, "repeats": prepared.spec.repeats, "task": prepared.task,
              "metric": prepared.metric, "n_threads": threads}
    params.update(data_eval_params(prepared))
    return params
