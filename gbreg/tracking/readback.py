"""Reading a study back from MLflow, the one place that does: a study's parent run (by study name, run id or
a trial's id), its recorded spec and artifacts, and its trials (as a table, or as records to compare).

Used by ``gbreg results``, ``gbreg report`` and ``gbreg reproduce``, and by a rerun for the trials an
earlier run finished. A running study never reads back what it just logged: it keeps its results in
memory (:mod:`gbreg.run.records`)."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from gbreg.catalogue import PENALTY_AXES, shown_in
from gbreg.errors import SpecError, UserInputError
from gbreg.spec.schema import Spec
from gbreg.spec.validation import validate_spec
from gbreg.tracking.run_table import numeric_columns
from gbreg.tracking.store import retrying
from gbreg.tracking.suite_runs import SUITE_KIND, TAG_SUITE, TAG_SUITE_RUN_ID
from gbreg.tracking.tracker import (
    RESULTS_ARTIFACT,
    SPEC_ARTIFACT,
    SPEC_INPUT_ARTIFACT,
    TAG_BASE_DIR,
    TAG_KIND,
    TAG_PARENT,
    TAG_REPRODUCES,
    TAG_SPEC_SOURCE,
    TAG_STUDY,
    TAG_TRIAL_KEY,
    finished_trial_runs,
)

SUMMARY_COLUMNS = ("run_name", "library", "model", *PENALTY_AXES, "test_{m}", "train_{m}", "gap_{m}",
                   *shown_in("summary"))


def find_parent_run(client, study_or_run: str):
    """A parent run id (a trial's id stands for its study), or the study of that name's latest original
    parent run: a ``gbreg reproduce`` rerun is chosen only when the study has no other. An MLflow experiment's
    name (``mlflow.experiment`` in a spec) stands for the study in it, by the same rule."""

    store = f"the tracking store {client.tracking_uri}"
    try:
        run = client.get_run(study_or_run)
    except Exception:  # noqa: BLE001 - not a run id: try it as a study name
        run = None
    if run is not None:
        parent_id = run.data.tags.get("mlflow.parentRunId")
        parent = client.get_run(parent_id) if parent_id else run
        refuse_suite_run(client, parent)
        return parent
    experiments = retrying(lambda: client.search_experiments(max_results=1000))
    ids = [e.experiment_id for e in experiments]
    if not ids:
        raise UserInputError(f"no study or run {study_or_run!r}: {store} has no experiments")
    runs = _study_parent_runs(client, ids, f"tags.`{TAG_STUDY}` = '{_quoted(study_or_run)}'")
    if runs:
        return _latest_original(runs)
    suites = retrying(lambda: client.search_runs(
        ids, filter_string=f"tags.`{TAG_KIND}` = '{SUITE_KIND}' and tags.`{TAG_SUITE}` = '{_quoted(study_or_run)}'",
        max_results=1, order_by=["attributes.start_time DESC"]))
    if suites:
        refuse_suite_run(client, suites[0])
    experiment = next((e for e in experiments if e.name == study_or_run), None)
    if experiment is not None:
        return _experiment_parent_run(client, experiment, experiments)
    names = sorted({e.name for e in experiments})
    raise UserInputError(f"no study or run {study_or_run!r} in {store}; experiments: {', '.join(names[:20])}")


def _quoted(name: str) -> str:
    return name.replace("'", "\\'")


def _study_parent_runs(client, experiment_ids: list[str], condition: str | None = None) -> list:
    """The study parent runs in those experiments (matching ``condition``, an MLflow filter), latest first."""
    kind = f"tags.`{TAG_KIND}` = 'study'"
    return retrying(lambda: client.search_runs(
        experiment_ids, filter_string=f"{kind} and {condition}" if condition else kind, max_results=1000,
        order_by=["attributes.start_time DESC"]))


def _latest_original(runs: list):
    """Of a study's parent runs (latest first), the latest that is not a ``gbreg reproduce`` rerun."""
    originals = [r for r in runs if TAG_REPRODUCES not in r.data.tags]
    return (originals or runs)[0]


def _experiment_parent_run(client, experiment, experiments: list):
    """``gbreg results EXPERIMENT``: the latest original run of the study in that experiment. An experiment of
    several studies gives the latest one's, with a warning naming the others; one without a study is an
    error naming the experiments that hold studies."""
    runs = _study_parent_runs(client, [experiment.experiment_id])
    by_study: dict[str, list] = {}
    for run in runs:
        by_study.setdefault(run.data.tags.get(TAG_STUDY, run.info.run_name), []).append(run)
    if not by_study:
        studies = _study_experiments(client, experiments)
        listed = ", ".join(f"{study!r} (experiment {name!r})" for study, name in list(studies.items())[:20])
        raise UserInputError(f"experiment {experiment.name!r} holds no gbreg study (`gbreg run` logs each study to "
                             "the experiment named by its spec's mlflow.experiment, else its name); "
                             + (f"give a study or its experiment: {listed}" if listed
                                else f"{client.tracking_uri} holds no study yet"))
    chosen = next(iter(by_study))  # the study of the latest run
    parent = _latest_original(by_study[chosen])
    if len(by_study) > 1:
        others = ", ".join(repr(name) for name in list(by_study)[1:])
        logging.getLogger("gbreg").warning(
            f"experiment {experiment.name!r} holds {len(by_study)} studies; showing the latest, {chosen!r} (run "
            f"{parent.info.run_id}); the others: {others}; give a study's name (`gbreg results STUDY`) or pick a "
            f"run with `gbreg results {experiment.name} --run RUN_ID`")
    return parent


def _study_experiments(client, experiments: list) -> dict[str, str]:
    """Study name -> its experiment's name, for a message (the studies of the latest 1000 parent runs)."""
    names = {e.experiment_id: e.name for e in experiments}
    return {run.data.tags.get(TAG_STUDY, run.info.run_name): names.get(run.info.experiment_id, "?")
            for run in reversed(_study_parent_runs(client, list(names)))}


def trials_done_in_store(config, spec) -> int | None:
    """How many trials of ``spec``'s plan the configured store has finished on the spec's data: what a
    ``gbreg run`` would find done and skip (:func:`gbreg.tracking.tracker.finished_trial_runs`, the query its
    resume makes). Reads only, and does not wait for a tracking server that is away; None when there is no
    store to read. Loads the data (the trials done are those on the same data) only when the study's
    experiment exists, and builds the whole plan (as the run would) only when that experiment holds
    finished trials."""
    from dataclasses import replace

    from gbreg.data import load_dataset
    from gbreg.plan import make_plan
    from gbreg.tracking.store import missing_store_message, open_store

    if missing_store_message(config):
        return None
    client = open_store(replace(config, server_wait_seconds=0))
    experiment = retrying(lambda: client.get_experiment_by_name(spec.experiment_name))
    if experiment is None:
        return 0
    data_sha = load_dataset(spec.data, spec.task, spec.seed, spec.base_dir).fingerprint()
    done = finished_trial_runs(client, experiment.experiment_id, spec.name, data_sha)
    return sum(trial.trial_key in done for trial in make_plan(spec)) if done else 0


def refuse_suite_run(client, run) -> None:
    """A suite's run holds no trials: say so, with the commands that show what it does hold."""
    if run.data.tags.get(TAG_KIND) != SUITE_KIND:
        return
    run_id, suite = run.info.run_id, run.data.tags.get(TAG_SUITE, run.info.run_name)
    studies = retrying(lambda: client.search_runs(
        [run.info.experiment_id], max_results=1000,
        filter_string=f"tags.`{TAG_SUITE_RUN_ID}` = '{run_id}' and tags.`{TAG_KIND}` = 'study'"))
    names = sorted({r.data.tags.get(TAG_STUDY, r.info.run_name) for r in studies})
    listed = f"; its studies: {', '.join(repr(n) for n in names)} (gbreg results STUDY)" if names else ""
    raise UserInputError(f"run {run_id} is the run of suite {suite!r}, which combines its studies' verdicts and "
                         f"holds no trials: see `gbreg suite report {run_id} -o suite.html`{listed}")


def chosen_parent_run(client, study: str, run_id: str):
    """``gbreg results STUDY --run RUN_ID``: that run's study parent, which must belong to STUDY (the study, or
    the experiment it is logged to)."""

    try:
        run = client.get_run(run_id)
    except Exception as exc:  # noqa: BLE001 - MLflow raises its own exception for an unknown id
        raise UserInputError(f"--run {run_id}: no such run in the tracking store {client.tracking_uri}") from exc
    parent_id = run.data.tags.get("mlflow.parentRunId")
    parent = client.get_run(parent_id) if parent_id else run
    owner = parent.data.tags.get(TAG_STUDY)
    if owner is None:
        raise UserInputError(f"--run {run_id}: not a run of a gbreg study")
    if owner != study and _experiment_name(client, parent) != study:
        raise UserInputError(f"--run {run_id}: that run belongs to study {owner!r}, not {study!r}")
    return parent


def _experiment_name(client, run) -> str | None:
    experiment = retrying(lambda: client.get_experiment(run.info.experiment_id))
    return experiment.name if experiment is not None else None


def study_results(client, parent) -> pd.DataFrame:
    """The trials of a study as logged: its results.csv artifact when present, else its child runs."""

    run_id = parent.info.run_id
    try:
        text = retrying(lambda: client.download_artifacts(run_id, RESULTS_ARTIFACT))
        return pd.read_csv(text)
    except Exception:  # noqa: BLE001 - a study still running has no results.csv yet
        pass
    children = retrying(lambda: client.search_runs([parent.info.experiment_id],
                                                   filter_string=f"tags.`{TAG_PARENT}` = '{run_id}'",
                                                   max_results=50000))
    return latest_run_per_trial(runs_frame(client, [r.info.run_id for r in children])) if children else pd.DataFrame()


def latest_run_per_trial(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per trial key of an unfinished study's child runs: a trial abandoned, then run again when the
    study was resumed, has two runs; its FINISHED one stands for it (as in :func:`trial_records`)."""
    if "trial_key" not in runs or runs.empty:
        return runs
    finished_last = runs.assign(_finished=runs["status"] == "FINISHED").sort_values("_finished", kind="stable")
    kept = finished_last.drop_duplicates("trial_key", keep="last").drop(columns="_finished")
    return kept.sort_index()


def unfinished_note(parent, results: pd.DataFrame) -> str | None:
    """What a reader of a study that did not finish must know: how far it got, and how to resume it."""
    status = parent.info.status
    if status == "FINISHED":
        return None
    state = {"RUNNING": "is still running, or its process died (the next `gbreg run` of it marks that)",
             "KILLED": "was interrupted", "FAILED": "stopped on an error"}.get(status, f"is {status}")
    finished = int((results["status"] == "FINISHED").sum()) if "status" in results else 0
    planned = parent.data.params.get("n_trials", "?")
    source = parent.data.tags.get(TAG_SPEC_SOURCE, "its spec")
    trials = "trial" if planned == "1" else "trials"
    return (f"this run of the study {state}: {finished} of {planned} {trials} finished; `gbreg run {source}` "
            "(with the same --set overrides, if it had any) resumes it")


def summary_table(results: pd.DataFrame, metric: str) -> pd.DataFrame:
    columns = [c.format(m=metric) for c in SUMMARY_COLUMNS]
    return results[[c for c in columns if c in results.columns]]


def study_parent(client, run, asked: str):
    """The study's parent run: ``run`` itself, or the parent of a trial's run."""

    kind = run.data.tags.get(TAG_KIND)
    if kind == "study":
        return run
    parent_id = run.data.tags.get(TAG_PARENT)
    if kind in ("booster", "linear") and parent_id:
        return client.get_run(parent_id)
    raise UserInputError(f"run {asked!r} is not a gbreg study (no {TAG_KIND} tag); give a study's parent run "
                         "id or its name")


def study_parent_run(client, run_id: str):
    """The parent run of a study by its id (``gbreg reproduce``): a trial's id is refused with its parent's."""
    try:
        run = retrying(lambda: client.get_run(run_id))
    except Exception as exc:
        raise UserInputError(f"no run {run_id!r} in the tracking store {client.tracking_uri}; give the id of a "
                             "study's parent run "
                             "(printed at the end of `gbreg run`, or see `gbreg results STUDY`)") from exc
    tags = run.data.tags
    if tags.get(TAG_KIND) != "study":
        hint = f"; reproduce its parent run {tags[TAG_PARENT]}" if TAG_PARENT in tags else ""
        raise UserInputError(f"run {run_id} is not a gbreg study's parent run{hint}")
    return run


def download_artifact(client, run_id: str, path: str, folder: str) -> Path | None:
    """A run's artifact (a file or a folder) downloaded into ``folder``; None when the run has none of that name."""
    try:
        local = Path(retrying(lambda: client.download_artifacts(run_id, path, folder)))
    except Exception:  # noqa: BLE001 - an artifact the study did not produce is simply not in the report
        return None
    return local if local.exists() else None


def recorded_spec(client, parent):
    """The study's spec as the parent run recorded it, ready to run again."""

    run_id = parent.info.run_id
    source = f"run {run_id} ({SPEC_INPUT_ARTIFACT})"
    text = None
    with tempfile.TemporaryDirectory(prefix="gbreg-") as folder:
        for name in (SPEC_INPUT_ARTIFACT, SPEC_ARTIFACT):  # runs logged before spec_input.yaml have spec.yaml
            path = download_artifact(client, run_id, name, folder)
            if path is not None:
                text, source = path.read_text(encoding="utf-8"), f"run {run_id} ({name})"
                break
    if text is None:
        raise UserInputError(f"run {run_id} has no {SPEC_INPUT_ARTIFACT} or {SPEC_ARTIFACT} artifact to rerun from")
    raw = yaml.safe_load(text)
    if not isinstance(raw, dict):
        raise SpecError(source, [("", "the recorded spec is not a mapping")])
    raw = {key: value for key, value in raw.items() if key in Spec.model_fields}  # e.g. data_sha256
    base_dir = Path(parent.data.tags.get(TAG_BASE_DIR, Path.cwd()))
    spec = validate_spec(raw, source=source, base_dir=base_dir)
    spec._source = parent.data.tags.get(TAG_SPEC_SOURCE, source)
    return spec


@dataclass
class TrialRecord:
    """One child run as read back: enough to compare it with its counterpart."""

    run_id: str
    run_name: str
    status: str
    metrics: dict[str, float]
    n_threads: str | None = None  # its n_threads param: the threads it was trained with


def trial_records(client, parent) -> dict[str, TrialRecord]:
    """trial key -> the study's child run for it: the runs in its results.csv, else its own children."""

    run_ids = results_run_ids(client, parent.info.run_id)
    experiment = parent.info.experiment_id
    if run_ids:
        runs = []
        for start in range(0, len(run_ids), 100):
            chunk = run_ids[start: start + 100]
            quoted = ", ".join(f"'{r}'" for r in chunk)
            runs += retrying(lambda: client.search_runs([experiment], f"attributes.run_id IN ({quoted})",
                                                        max_results=len(chunk)))
    else:
        runs = retrying(lambda: client.search_runs(
            [experiment], f"tags.`{TAG_PARENT}` = '{parent.info.run_id}'", max_results=50000,
            order_by=["attributes.start_time ASC"]))
    records: dict[str, TrialRecord] = {}
    for run in runs:  # a key run twice (failed, then resumed) keeps the later, FINISHED one
        key = run.data.tags.get(TAG_TRIAL_KEY)
        if key is None or (key in records and records[key].status == "FINISHED" and run.info.status != "FINISHED"):
            continue
        records[key] = TrialRecord(run.info.run_id, run.info.run_name, run.info.status, dict(run.data.metrics),
                                   run.data.params.get("n_threads"))
    return records


def results_run_ids(client, run_id: str) -> list[str]:
    """The child run ids listed in a study's results.csv; empty when it has none (an interrupted study)."""

    with tempfile.TemporaryDirectory(prefix="gbreg-") as folder:
        path = download_artifact(client, run_id, RESULTS_ARTIFACT, folder)
        if path is None:
            return []
        frame = pd.read_csv(path, usecols=["run_id"])
    return [str(r) for r in frame["run_id"].dropna()]


def runs_frame(client, run_ids: list[str]) -> pd.DataFrame:
    """One row per run: run id, name, status, params and latest metrics (the results table)."""
    rows = []
    for chunk in _chunks(run_ids, 100):
        quoted = ", ".join(f"'{run_id}'" for run_id in chunk)
        runs = retrying(lambda: client.search_runs(
            [client.get_run(chunk[0]).info.experiment_id], filter_string=f"attributes.run_id IN ({quoted})",
            max_results=len(chunk)))
        for run in runs:
            row = {"run_id": run.info.run_id, "run_name": run.info.run_name, "status": run.info.status,
                   "trial_key": run.data.tags.get(TAG_TRIAL_KEY), "kind": run.data.tags.get(TAG_KIND)}
            row.update(run.data.params)
            row.update(run.data.metrics)
            rows.append(row)
    return numeric_columns(pd.DataFrame(rows))


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start: start + size]


def find_suite_run(client, suite_or_run: str):
    """A suite's run by its id (a study of the suite stands for it), or the latest run of the suite of that
    name."""
    try:
        run = client.get_run(suite_or_run)
    except Exception:  # noqa: BLE001 - not a run id: try it as a suite name
        run = None
    if run is not None:
        if run.data.tags.get(TAG_KIND) == SUITE_KIND:
            return run
        study = find_parent_run(client, suite_or_run)
        if TAG_SUITE_RUN_ID in study.data.tags:
            return retrying(lambda: client.get_run(study.data.tags[TAG_SUITE_RUN_ID]))
        raise UserInputError(f"run {suite_or_run} is not a gbreg suite run, nor a study of one")
    experiment = retrying(lambda: client.get_experiment_by_name(suite_or_run))
    quoted = suite_or_run.replace("'", "\\'")
    runs = [] if experiment is None else retrying(lambda: client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`{TAG_KIND}` = '{SUITE_KIND}' and tags.`{TAG_SUITE}` = "
        f"'{quoted}'", max_results=1, order_by=["attributes.start_time DESC"]))
    if not runs:
        raise UserInputError(f"no suite or suite run {suite_or_run!r} in the tracking store {client.tracking_uri}")
    return runs[0]
