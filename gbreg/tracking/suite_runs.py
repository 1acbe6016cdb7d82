"""A suite's parent run: in the experiment named after the suite, tag ``gbreg.kind = suite``; each data
set's study run carries ``gbreg.suite`` and ``gbreg.suite_run_id``. Only the main process writes."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from gbreg.tracking.store import retrying
from gbreg.tracking.tracker import (
    TAG_ERROR,
    TAG_KIND,
    TAG_SPEC_SHA,
    TAG_SPEC_SOURCE,
    environment_tags,
    log_in_batches,
    reopen_run,
)

TAG_SUITE = "gbreg.suite"
TAG_SUITE_RUN_ID = "gbreg.suite_run_id"
SUITE_KIND = "suite"
SUITE_SPEC_ARTIFACT = "suite.yaml"
SUITE_RESULTS_ARTIFACT = "suite_results.csv"
SUITE_FINDINGS_ARTIFACT = "suite_findings.md"
SUITE_DATASETS_ARTIFACT = "suite_datasets.csv"  # one row per data set: its study run, size, task


def latest_suite_run(client, experiment_id: str, suite_sha: str):
    """The newest suite run of this exact suite (same validated spec), or None."""
    filter_string = f"tags.`{TAG_KIND}` = '{SUITE_KIND}' and tags.`{TAG_SPEC_SHA}` = '{suite_sha}'"
    runs = retrying(lambda: client.search_runs([experiment_id], filter_string=filter_string, max_results=1,
                                               order_by=["attributes.start_time DESC"]))
    return runs[0] if runs else None


class SuiteTracker:
    """Writes the suite's parent run; the studies write their own runs (gbreg.run.study)."""

    def __init__(self, client, experiment_id: str, suite: str, suite_sha: str):
        self.client = client
        self.experiment_id = experiment_id
        self.suite = suite
        self.suite_sha = suite_sha
        self.run_id: str | None = None

    def start(self, params: dict, suite_yaml: str, source: str, resume_run_id: str | None = None) -> str:
        if resume_run_id:
            self.run_id = resume_run_id
            reopen_run(self.client, resume_run_id)
            return resume_run_id
        tags = {**environment_tags(), TAG_KIND: SUITE_KIND, TAG_SUITE: self.suite, TAG_SPEC_SHA: self.suite_sha,
                TAG_SPEC_SOURCE: source}
        name = f"{self.suite} · suite · {datetime.now().strftime('%Y-%m-%d %H:%M')}"
        run = retrying(lambda: self.client.create_run(self.experiment_id, run_name=name, tags=tags))
        self.run_id = run.info.run_id
        log_in_batches(self.client, self.run_id, params=params)
        self.log_text(suite_yaml, SUITE_SPEC_ARTIFACT)
        return self.run_id

    def study_tags(self) -> dict[str, str]:
        return {TAG_SUITE: self.suite, TAG_SUITE_RUN_ID: str(self.run_id)}

    def log_text(self, text: str, artifact_file: str) -> None:
        retrying(lambda: self.client.log_text(self.run_id, text, artifact_file))

    def log_file(self, path: Path, artifact_path: str | None = None) -> None:
        retrying(lambda: self.client.log_artifact(self.run_id, str(path), artifact_path))

    def log_metrics(self, metrics: dict[str, float]) -> None:
        log_in_batches(self.client, self.run_id, metrics=metrics)

    def finish(self, status: str, error: str | None = None) -> None:
        if self.run_id is None:
            return
        if error:
            retrying(lambda: self.client.set_tag(self.run_id, TAG_ERROR, error[:5000]))
        retrying(lambda: self.client.set_terminated(self.run_id, status=status))
