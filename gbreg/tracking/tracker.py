"""The one place that writes to MLflow, and the names it writes (the public MLflow contract).

Run layout: one parent run per ``gbreg run`` (tag ``gbreg.kind = study``), one child run per trial
(``gbreg.kind = booster`` or ``linear``; ``mlflow.parentRunId`` set). Only the main process calls this;
each trial is logged with a handful of batched calls.
"""

from __future__ import annotations

import json
import math
import os
import platform
import socket
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from gbreg.models.boosters import library_packages
from gbreg.tracking.sql_records import SqlTrialRecords
from gbreg.tracking.store import retrying

# tags
TAG_KIND = "gbreg.kind"
TAG_STUDY = "gbreg.study"
TAG_TRIAL_KEY = "gbreg.trial_key"
TAG_SPEC_SHA = "gbreg.spec_sha256"
TAG_DATA_SHA = "gbreg.data_sha256"
TAG_PID = "gbreg.pid"
TAG_HOST = "gbreg.host"
TAG_ERROR = "gbreg.error"
TAG_REPRODUCES = "gbreg.reproduces"
TAG_SPEC_SOURCE = "gbreg.spec_source"  # the spec file the study was run from
TAG_BASE_DIR = "gbreg.base_dir"  # the folder relative data paths were resolved against
TAG_PLATFORM = "gbreg.platform"
TAG_GIT_COMMIT = "mlflow.source.git.commit"
VERSION_TAG_PREFIX = "gbreg.version."
TAG_PARENT = "mlflow.parentRunId"
VERSIONED_PACKAGES = tuple(dict.fromkeys((*library_packages(), "scikit-learn", "mlflow", "numpy", "pandas", "scipy")))

# artifacts
SPEC_ARTIFACT = "spec.yaml"  # resolved: task, metric and every model parameter filled in
SPEC_INPUT_ARTIFACT = "spec_input.yaml"  # as validated (after --set): rerunning it gives the same trial keys
RESULTS_ARTIFACT = "results.csv"
# a trial's own files: gbreg.models.trial (LEAVES_ARTIFACT, FOLDS_ARTIFACT, ...), where the worker writes them


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for name in ("gbreg", *VERSIONED_PACKAGES):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            pass
    return versions


def git_commit() -> str | None:
    here = Path(__file__).resolve().parents[2]  # the checkout gbreg runs from, if it is one
    if not (here / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def environment_tags() -> dict[str, str]:
    tags = {f"{VERSION_TAG_PREFIX}{name}": v for name, v in package_versions().items()}
    tags[TAG_PLATFORM] = platform.platform()
    tags[TAG_HOST] = socket.gethostname()
    tags[TAG_PID] = str(os.getpid())
    commit = git_commit()
    if commit:
        tags[TAG_GIT_COMMIT] = commit
    return tags


def param_value(value) -> str:
    """A param as MLflow keeps it: text, lists and mappings as JSON (UTF-8), at most 6,000 characters."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return repr(value)
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else str(value)
    return text[:6000]


class StudyTracker:
    """Writes one study: its parent run and a child run per trial."""

    def __init__(self, client, experiment_id: str, study: str, spec_sha: str, data_sha: str):
        self.client = client
        self.experiment_id = experiment_id
        self.study = study
        self.spec_sha = spec_sha
        self.data_sha = data_sha
        self.parent_run_id: str | None = None
        self._env_tags = environment_tags()
        self._sql = SqlTrialRecords.for_client(client, experiment_id)  # None: through MLflow's client
        self._artifact_uris: dict[str, str] = {}  # trial run id -> its artifact URI

    # ------------------------------------------------------------------ parent run
    def start_parent(self, params: dict, spec_yaml: str, dataset_input=None, extra_tags: dict | None = None,
                     resume_run_id: str | None = None) -> str:
        """The study's run (or the unfinished one it resumes), with the data set via dataset tracking."""
        if resume_run_id:
            self.parent_run_id = resume_run_id
            reopen_run(self.client, resume_run_id)
            return resume_run_id
        name = f"{self.study} · {datetime.now().strftime('%Y-%m-%d %H:%M')}"
        tags = {**self._env_tags, TAG_KIND: "study", TAG_STUDY: self.study, TAG_SPEC_SHA: self.spec_sha,
                TAG_DATA_SHA: self.data_sha, **(extra_tags or {})}
        run = retrying(lambda: self.client.create_run(self.experiment_id, run_name=name, tags=tags))
        self.parent_run_id = run.info.run_id
        self._log_params(self.parent_run_id, params)
        self.log_text(self.parent_run_id, spec_yaml, SPEC_ARTIFACT)
        if dataset_input is not None:
            retrying(lambda: self.client.log_inputs(self.parent_run_id, datasets=[dataset_input]))
        return self.parent_run_id

    def finish_parent(self, status: str, metrics: dict | None = None, tags: dict | None = None) -> None:
        """The parent's last records and status; the trials' writes are all in the store before it ends."""
        if self._sql is not None:
            self._sql.stop()
        if metrics or tags:
            self._log_batch(self.parent_run_id, metrics=metrics or {}, tags=tags or {})
        retrying(lambda: self.client.set_terminated(self.parent_run_id, status=status))

    def settle(self) -> None:
        """Every trial run opened or closed so far is in the store: the barrier before a read of the store
        or a write through MLflow's client (raises the error writing them ended with, once)."""
        if self._sql is not None:
            self._sql.settle()

    # ------------------------------------------------------------------ child runs
    def start_trial(self, trial, params: dict) -> str:
        tags = {**self._env_tags, TAG_KIND: trial.kind, TAG_STUDY: self.study, TAG_TRIAL_KEY: trial.trial_key,
                TAG_SPEC_SHA: self.spec_sha, TAG_DATA_SHA: self.data_sha, TAG_PARENT: self.parent_run_id}
        if self._sql is not None:
            run_id, artifact_uri = self._sql.open_run(trial.run_name, tags, _param_strings(params))
        else:
            run = retrying(lambda: self.client.create_run(self.experiment_id, run_name=trial.run_name, tags=tags))
            self._log_params(run.info.run_id, params)
            run_id, artifact_uri = run.info.run_id, run.info.artifact_uri
        self._artifact_uris[run_id] = artifact_uri
        return run_id

    def finish_trial(self, run_id: str, result) -> None:
        """Metrics, curves and artifacts in batches, then FINISHED (or FAILED with the error)."""
        if not result.ok:  # written through MLflow's client, after the run's queued opening
            self._log_batch(run_id, tags={TAG_ERROR: result.error[:5000]})
            self.log_text(run_id, result.error_detail or result.error, "error.txt")
            retrying(lambda: self.client.set_terminated(run_id, status="FAILED"))
            return
        self._store_files(run_id, result.files)  # before FINISHED: a finished run has its files
        if self._sql is not None:
            self._sql.close_run(run_id, _metric_rows(result.metrics, result.curves),
                                _param_strings(result.extra_params), "FINISHED")
        else:
            self._log_batch(run_id, metrics=result.metrics, curves=result.curves, params=result.extra_params)
            retrying(lambda: self.client.set_terminated(run_id, status="FINISHED"))
        self._artifact_uris.pop(run_id, None)

    def _store_files(self, run_id: str, files: dict[str, bytes]) -> None:
        """The trial's files into its run: written in place in a local artifact folder (nothing to
        upload), else through MLflow's artifact repository."""
        if not files:
            return
        from urllib.parse import urlparse

        from mlflow.utils.file_utils import local_file_uri_to_path

        uri = self._artifact_uris.get(run_id) or retrying(lambda: self.client.get_run(run_id)).info.artifact_uri
        if urlparse(uri).scheme in ("", "file"):
            folder = Path(local_file_uri_to_path(uri))
            folder.mkdir(parents=True, exist_ok=True)
            for name, content in files.items():
                (folder / name).write_bytes(content)
            return
        with tempfile.TemporaryDirectory(prefix="gbreg-") as staging:
            for name, content in files.items():
                (Path(staging) / name).write_bytes(content)
            retrying(lambda: self.client.log_artifacts(run_id, staging))

    def add_trial_metrics(self, metrics_by_run: dict[str, dict[str, float]]) -> None:
        """Metrics computed after the sweep on many trial runs (the shrinkage against the unregularized
        trial): one transaction on an embedded store, a batch per run otherwise."""
        metrics_by_run = {run_id: {k: v for k, v in metrics.items() if finite(v)}
                          for run_id, metrics in metrics_by_run.items()}
        metrics_by_run = {run_id: metrics for run_id, metrics in metrics_by_run.items() if metrics}
        if self._sql is not None:
            self._sql.add_metrics(metrics_by_run)
            return
        for run_id, metrics in metrics_by_run.items():
            self._log_batch(run_id, metrics=metrics)

    def log_child_metrics(self, run_id: str, metrics: dict, tags: dict | None = None) -> None:
        """Add metrics computed after the sweep (e.g. shrinkage against the unregularized trial)."""
        self._log_batch(run_id, metrics=metrics, tags=tags)

    def kill_running_trials(self, status: str = "KILLED", error: str | None = None) -> int:
        """Mark ``status`` every child run this process left RUNNING: found in the store, so a run created
        the instant before Ctrl-C (its id not yet returned to the caller) is not missed."""
        self.settle()
        filter_string = (f"tags.`{TAG_PARENT}` = '{self.parent_run_id}' and attributes.status = 'RUNNING' "
                         f"and tags.`{TAG_PID}` = '{os.getpid()}'")
        runs = retrying(lambda: self.client.search_runs([self.experiment_id], filter_string=filter_string,
                                                        max_results=50000))
        for run in runs:
            self.kill_trial(run.info.run_id, status, error)
        return len(runs)

    def kill_trial(self, run_id: str, status: str = "KILLED", error: str | None = None) -> None:
        """Mark a trial abandoned by Ctrl-C KILLED (or, after an error, FAILED with it), unless it got as
        far as FINISHED or FAILED."""
        self.settle()
        if retrying(lambda: self.client.get_run(run_id)).info.status == "RUNNING":
            if error:
                retrying(lambda: self.client.set_tag(run_id, TAG_ERROR, error[:5000]))
            retrying(lambda: self.client.set_terminated(run_id, status=status))

    # ------------------------------------------------------------------ plumbing
    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self.settle()
        retrying(lambda: self.client.log_text(run_id, text, artifact_file))

    def log_file(self, run_id: str, path: Path, artifact_path: str | None = None) -> None:
        self.settle()
        retrying(lambda: self.client.log_artifact(run_id, str(path), artifact_path))

    def _log_params(self, run_id: str, params: dict) -> None:
        self._log_batch(run_id, params=params)

    def _log_batch(self, run_id: str, metrics: dict | None = None, curves: dict | None = None,
                   tags: dict | None = None, params: dict | None = None) -> None:
        self.settle()
        log_in_batches(self.client, run_id, metrics, curves, tags, params)


def reopen_run(client, run_id: str) -> None:
    """A parent run (a study's or a suite's) resumed by this process: RUNNING, this pid, no error tag (it
    died; now it runs again)."""
    retrying(lambda: client.update_run(run_id, status="RUNNING"))
    retrying(lambda: client.set_tag(run_id, TAG_PID, str(os.getpid())))
    if TAG_ERROR in retrying(lambda: client.get_run(run_id)).data.tags:
        retrying(lambda: client.delete_tag(run_id, TAG_ERROR))


def log_in_batches(client, run_id: str, metrics: dict | None = None, curves: dict | None = None,
                   tags: dict | None = None, params: dict | None = None) -> None:
    """As few ``log_batch`` calls as MLflow's limits allow (1,000 entities, 100 params or tags a call):
    one for a typical trial, since every call is a transaction on the store."""
    from mlflow.entities import Metric, Param, RunTag

    metric_entities = [Metric(*row) for row in _metric_rows(metrics or {}, curves or {})]
    param_entities = [Param(k, v) for k, v in _param_strings(params or {}).items()]
    tag_entities = [RunTag(k, str(v)) for k, v in (tags or {}).items()]
    while metric_entities or param_entities or tag_entities:
        batch_params, param_entities = param_entities[:100], param_entities[100:]
        batch_tags, tag_entities = tag_entities[:100], tag_entities[100:]
        room = 1000 - len(batch_params) - len(batch_tags)
        batch_metrics, metric_entities = metric_entities[:room], metric_entities[room:]
        retrying(lambda: client.log_batch(run_id, metrics=batch_metrics, params=batch_params,
                                          tags=batch_tags, synchronous=True))


def _metric_rows(metrics: dict, curves: dict) -> list[tuple[str, float, int, int]]:
    """(key, value, timestamp, step): a trial's metrics at step 0, its curves at rounds 1, 2, ...; values
    MLflow would not keep as numbers (NaN, inf) are left out."""
    now = int(time.time() * 1000)
    rows = [(k, float(v), now, 0) for k, v in metrics.items() if finite(v)]
    for name, values in curves.items():
        rows += [(name, float(v), now, step) for step, v in enumerate(np.asarray(values), 1) if finite(v)]
    return rows


def _param_strings(params: dict) -> dict[str, str]:
    return {str(k): param_value(v) for k, v in params.items()}


def finite(value) -> bool:
    """Whether MLflow keeps this value as a metric (it drops NaN and infinities)."""
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


# ---------------------------------------------------------------------- reading back


def finished_trial_runs(client, experiment_id: str, study: str, data_sha: str) -> dict[str, str]:
    """trial key -> run id of the latest FINISHED child run of this study on the same data."""
    filter_string = (f"tags.`{TAG_STUDY}` = '{_quote(study)}' and attributes.status = 'FINISHED' "
                     f"and tags.`{TAG_DATA_SHA}` = '{data_sha}'")
    runs = retrying(lambda: client.search_runs([experiment_id], filter_string=filter_string, max_results=50000,
                                               order_by=["attributes.start_time DESC"]))
    done: dict[str, str] = {}
    for run in runs:
        key = run.data.tags.get(TAG_TRIAL_KEY)
        if key and key not in done:
            done[key] = run.info.run_id
    return done


def latest_parent(client, experiment_id: str, spec_sha: str | None = None, unfinished: bool = False):
    parts = [f"tags.`{TAG_KIND}` = 'study'"]
    if spec_sha:
        parts.append(f"tags.`{TAG_SPEC_SHA}` = '{spec_sha}'")
    if unfinished:
        parts.append("attributes.status != 'FINISHED'")
    runs = retrying(lambda: client.search_runs([experiment_id], filter_string=" and ".join(parts), max_results=1,
                                               order_by=["attributes.start_time DESC"]))
    return runs[0] if runs else None


def _quote(text: str) -> str:
    return text.replace("'", "\\'")


def dataset_input(dataset):
    """MLflow dataset tracking: the data set as loaded (features + target), digest = gbreg's fingerprint."""
    import warnings

    import mlflow.data
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.models import infer_signature

    frame = dataset.X.copy()
    frame["target"] = dataset.y
    source = CodeDatasetSource(tags={"gbreg.data_source": dataset.source or dataset.name})
    with warnings.catch_warnings():  # MLflow's schema hint about integer columns is not for a data set record
        warnings.simplefilter("ignore")
        tracked = mlflow.data.from_pandas(frame, source=source, targets="target", name=dataset.name,
                                          digest=dataset.fingerprint()[:16])
        # MLflow infers the schema by visiting every value in Python (about 0.5 s on 20,000 x 50, on the
        # way to the first trial); the same schema comes from the first rows plus, for each column with
        # missing values, one such row (that is all that makes a column optional).
        tracked.__dict__["schema"] = infer_signature(_schema_sample(frame)).inputs
        entity = tracked._to_mlflow_entity()
    return DatasetInput(entity, tags=[InputTag("mlflow.data.context", "training")])


def _schema_sample(frame: pd.DataFrame, head: int = 1000) -> pd.DataFrame:
    """Rows enough to infer the frame's MLflow schema: the first ``head``, and the first missing value's
    row of every column that has one."""
    missing = frame.isna()
    rows = set(range(min(head, len(frame))))
    rows.update(int(np.argmax(missing[column].to_numpy())) for column in frame.columns if missing[column].any())
    return frame.iloc[sorted(rows)]
