"""Reading a study back from MLflow: the latest parent run of a study (or a given run) and its trials."""

from __future__ import annotations

import pandas as pd

from gbreg.catalogue import PENALTY_AXES, shown_in
from gbreg.errors import UserInputError

SUMMARY_COLUMNS = ("run_name", "library", "model", *PENALTY_AXES, "test_{m}", "train_{m}", "gap_{m}",
                   *shown_in("summary"))


def find_parent_run(client, study_or_run: str):
    """A parent run id (a trial's id stands for its study), or the study (experiment) of that name's
    latest original parent run: a ``gbreg reproduce`` rerun is chosen only when the study has no other."""
    from gbreg.store import retrying
    from gbreg.track import TAG_KIND, TAG_REPRODUCES, TAG_STUDY

    store = f"the tracking store {client.tracking_uri}"
    try:
        run = client.get_run(study_or_run)
    except Exception:  # noqa: BLE001 - not a run id: try it as a study name
        run = None
    if run is not None:
        parent_id = run.data.tags.get("mlflow.parentRunId")
        return client.get_run(parent_id) if parent_id else run
    experiments = retrying(lambda: client.search_experiments(max_results=1000))
    ids = [e.experiment_id for e in experiments]
    if not ids:
        raise UserInputError(f"no study or run {study_or_run!r}: {store} has no experiments")
    quoted = study_or_run.replace("'", "\\'")
    runs = retrying(lambda: client.search_runs(
        ids, filter_string=f"tags.`{TAG_KIND}` = 'study' and tags.`{TAG_STUDY}` = '{quoted}'",
        max_results=1000, order_by=["attributes.start_time DESC"]))
    if not runs:
        names = sorted({e.name for e in experiments})
        raise UserInputError(f"no study or run {study_or_run!r} in {store}; experiments: "
                             f"{', '.join(names[:20])}")
    originals = [r for r in runs if TAG_REPRODUCES not in r.data.tags]
    return (originals or runs)[0]


def chosen_parent_run(client, study: str, run_id: str):
    """``gbreg results STUDY --run RUN_ID``: that run's study parent, which must belong to STUDY."""
    from gbreg.track import TAG_STUDY

    try:
        run = client.get_run(run_id)
    except Exception as exc:  # noqa: BLE001 - MLflow raises its own exception for an unknown id
        raise UserInputError(f"--run {run_id}: no such run in the tracking store {client.tracking_uri}") from exc
    parent_id = run.data.tags.get("mlflow.parentRunId")
    parent = client.get_run(parent_id) if parent_id else run
    owner = parent.data.tags.get(TAG_STUDY)
    if owner is None:
        raise UserInputError(f"--run {run_id}: not a run of a gbreg study")
    if owner != study:
        raise UserInputError(f"--run {run_id}: that run belongs to study {owner!r}, not {study!r}")
    return parent


def study_results(client, parent) -> pd.DataFrame:
    """The trials of a study as logged: its results.csv artifact when present, else its child runs."""
    from gbreg.store import retrying
    from gbreg.track import RESULTS_ARTIFACT, TAG_PARENT, runs_frame

    run_id = parent.info.run_id
    try:
        text = retrying(lambda: client.download_artifacts(run_id, RESULTS_ARTIFACT))
        return pd.read_csv(text)
    except Exception:  # noqa: BLE001 - a study still running has no results.csv yet
        pass
    children = retrying(lambda: client.search_runs([parent.info.experiment_id],
                                                   filter_string=f"tags.`{TAG_PARENT}` = '{run_id}'",
                                                   max_results=50000))
    return runs_frame(client, [r.info.run_id for r in children]) if children else pd.DataFrame()


def summary_table(results: pd.DataFrame, metric: str) -> pd.DataFrame:
    columns = [c.format(m=metric) for c in SUMMARY_COLUMNS]
    return results[[c for c in columns if c in results.columns]]
