"""Run a suite: every entry checked (data included) before anything trains, then one normal study per
data set (each resumable and reproducible on its own), then the verdicts combined across data sets.

Phases: check (nothing logged if any entry is wrong) → the suite's parent run (or the unfinished one it
resumes) → the studies, in order, each tagged with the suite run → aggregation from the studies'
in-memory tables (:mod:`gbreg.suite.aggregate`) → the suite run's artifacts → FINISHED. Ctrl-C stops the
study in progress cleanly and marks the suite run KILLED; running the suite again resumes it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from shlex import quote

import pandas as pd
import yaml

from gbreg.analysis.findings import split_table
from gbreg.errors import DataError, SpecError
from gbreg.plan import count_trials, plan_head
from gbreg.run.control import RunControl
from gbreg.run.study import PreparedStudy, prepare_study, run_study, task_expectation_problems
from gbreg.spec.messages import counted
from gbreg.spec.tracking_config import TrackingConfig, load_tracking_config
from gbreg.suite.spec import Suite, SuiteStudy, add_study_problems, study_for_metric, with_skip_hint
from gbreg.suite.verdict_rows import dataset_descriptors, dataset_verdicts
from gbreg.tracking.dead_runs import mark_dead_runs_failed
from gbreg.tracking.run_table import numeric_columns
from gbreg.tracking.store import ensure_experiment, open_store
from gbreg.tracking.suite_runs import SuiteTracker, latest_suite_run


@dataclass
class SuiteOutcome:
    experiment_id: str
    run_id: str
    n_datasets: int
    studies: dict[str, str] = field(default_factory=dict)  # data set -> its study's parent run id
    verdicts: pd.DataFrame | None = None  # per data set x hypothesis x library (gbreg.suite.verdict_rows)
    descriptors: pd.DataFrame | None = None  # per data set
    results: pd.DataFrame | None = None  # suite_results.csv: the per-data-set rows and the combined ones
    failures: list[tuple[str, str]] = field(default_factory=list)  # (data set, what failed)
    interrupted: bool = False
    already_done: bool = False


def check_suite(suite: Suite, say=print) -> dict[str, PreparedStudy]:
    """Load every data set and check each study against it; every problem at once, with the key path in
    the suite file. Returns each data set's prepared study (the head of its plan only)."""
    problems: list[tuple[str, str]] = []
    prepared: dict[str, PreparedStudy] = {}
    for index, study in enumerate(suite.studies):
        try:
            prepared[study.dataset] = prepare_study(study.spec, plan=plan_head(study.spec, 1),
                                                    check_expect=not study.metric_from_data)
            if study.metric_from_data and study.spec.expect:  # the hypotheses change, not the data or trials
                study = suite.studies[index] = study_for_metric(suite, study, prepared[study.dataset].metric)
                prepared[study.dataset] = replace(prepared[study.dataset], spec=study.spec)
                if problems_here := task_expectation_problems(study.spec, prepared[study.dataset].task):
                    raise SpecError(suite.source, problems_here)
        except SpecError as exc:
            add_study_problems(problems, [(study.key_path(path), message) for path, message in exc.problems],
                               study.entry_path)
        except DataError as exc:
            problems.append((f"{study.entry_path}.data", str(exc)))
        else:
            say(_checked_line(study, prepared[study.dataset]))
    if problems:
        raise SpecError(suite.source, with_skip_hint(problems, len(suite.studies)))
    return prepared


def _checked_line(study: SuiteStudy, prepared: PreparedStudy) -> str:
    X = prepared.dataset.X
    return (f"  {study.dataset}: ok — {prepared.task}, {prepared.metric}, {len(prepared.dataset.y)} rows × "
            f"{X.shape[1]} features, {counted(count_trials(study.spec), 'trial')}")


def run_suite(suite: Suite, *, jobs: int | None = None, executor: str = "local", scheduler: str | None = None,
              fresh: bool = False, verbosity: int = 0, config: TrackingConfig | None = None,
              control: RunControl | None = None, allow_large: bool = False, say=print,
              resume_command: str | None = None) -> SuiteOutcome:
    """Run (or resume) a suite and log it to MLflow; see :class:`SuiteOutcome`. ``say`` prints the
    suite's own lines (each study prints its progress as ``gbreg run`` does, per ``verbosity``).
    ``resume_command``: what an interrupted study of the suite tells the user to run (a study of a suite
    is resumed by its suite; default ``gbreg suite run SUITE``)."""
    control = control or RunControl()
    quiet = verbosity < 0
    prepared = check_suite(suite, say=(lambda line: None) if quiet else say)
    config = config or load_tracking_config()
    client = open_store(config)
    lock = config.sqlite_path.with_suffix(".db.lock") if config.sqlite_path else None
    experiment_id = ensure_experiment(client, suite.name, config.artifact_location, lock)
    mark_dead_runs_failed(client, experiment_id)
    previous = None if fresh else latest_suite_run(client, experiment_id, suite.sha256())
    tracker = SuiteTracker(client, experiment_id, suite.name, suite.sha256())
    if previous is not None and previous.info.status == "FINISHED":
        if not quiet:
            again = "use --fresh" if resume_command else "run_suite(..., fresh=True)"  # a command, or the library
            say(f"the suite is done: its results are in run {previous.info.run_id} ({again} to run it again)")
        return SuiteOutcome(experiment_id, previous.info.run_id, len(suite.studies), already_done=True)
    resume = previous.info.run_id if previous is not None else None
    tracker.start(_suite_params(suite, prepared), yaml.safe_dump(suite.spec.model_dump(mode="json"),
                  sort_keys=False, allow_unicode=True), suite.source, resume_run_id=resume)
    outcome = SuiteOutcome(experiment_id, str(tracker.run_id), len(suite.studies))
    if resume and not quiet:
        say(f"resuming suite run {resume}")
    try:
        _run_studies(suite, outcome, tracker, prepared, say=say, quiet=quiet,
                     study_options=dict(jobs=jobs, executor=executor, scheduler=scheduler, fresh=fresh,
                                        verbosity=verbosity, config=config, control=control,
                                        allow_large=allow_large,
                                        resume_command=resume_command or f"gbreg suite run {quote(suite.source)}"))
        if outcome.interrupted:
            tracker.finish("KILLED")
            return outcome
        from gbreg.suite.aggregate import log_suite_results

        log_suite_results(tracker, suite, outcome)
    except KeyboardInterrupt:
        outcome.interrupted = True
        tracker.finish("KILLED")
        return outcome
    except BaseException as exc:
        tracker.finish("FAILED", error=f"{type(exc).__name__}: {exc}")
        raise
    tracker.finish("FINISHED")
    return outcome


def _run_studies(suite: Suite, outcome: SuiteOutcome, tracker: SuiteTracker, prepared: dict, *, say, quiet: bool,
                 study_options: dict) -> None:
    verdict_frames, descriptors = [], []
    progress = SuiteProgress([count_trials(study.spec) for study in suite.studies])
    for number, study in enumerate(suite.studies, 1):
        if not quiet:
            say(f"[{number}/{len(suite.studies)}] {study.dataset} (study {study.spec.name}) · {progress.line()}")
        result = run_study(study.spec, tags=tracker.study_tags(), **study_options)
        progress.study_done(number - 1, result.n_ran)
        outcome.studies[study.dataset] = str(result.parent_run_id)
        if result.interrupted:
            outcome.interrupted = True
            return
        if result.failures:
            outcome.failures.append((study.dataset, f"{len(result.failures)} of {result.n_trials} trials failed"))
        descriptors.append(dataset_descriptors(study.dataset, prepared[study.dataset]))
        verdict_frames.append(_study_verdicts(study, result, tracker.client))
    outcome.verdicts = pd.concat(verdict_frames, ignore_index=True) if verdict_frames else None
    outcome.descriptors = pd.DataFrame(descriptors)


class SuiteProgress:
    """Trials done over the whole suite, and the time left at the pace of the trials run so far (trials
    an earlier run finished cost nothing now and do not count in the pace)."""

    def __init__(self, trials_per_study: list[int]):
        self.trials = trials_per_study
        self.done = 0
        self.ran = 0
        self.started = time.monotonic()

    def study_done(self, index: int, ran: int) -> None:
        self.done += self.trials[index]
        self.ran += ran

    def line(self) -> str:
        total = sum(self.trials)
        elapsed = time.monotonic() - self.started
        text = f"suite: {self.done:,} of {total:,} trials done, elapsed {_clock(elapsed)}"
        if self.ran:
            text += f", left ~{_clock(elapsed / self.ran * (total - self.done))}"
        return text


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def _study_verdicts(study: SuiteStudy, result, client) -> pd.DataFrame:
    """Each hypothesis on each library of one study, from the tables the study returned (a study that was
    already finished returns tables read back from the store)."""
    results = result.results
    if results is None or not len(results):
        return dataset_verdicts(study.dataset, [], [], None, None, [])
    results = numeric_columns(results)
    splits = numeric_columns(split_table(client, results, result.folds))
    axes = list(study.spec.sweep_values())
    return dataset_verdicts(study.dataset, list(study.spec.expect), study.hypothesis_numbers, results, splits, axes)


def _suite_params(suite: Suite, prepared: dict[str, PreparedStudy]) -> dict:
    return {"seed": suite.spec.seed, "n_datasets": len(suite.studies),
            "datasets": ",".join(study.dataset for study in suite.studies),
            "n_hypotheses": len(suite.hypotheses),
            "n_trials": sum(count_trials(study.spec) for study in suite.studies),
            "libraries": ",".join(sorted({lib for s in suite.studies for lib in s.spec.libraries()}))}
