"""End to end through a real browser: a study in the embedded SQLite store, shown by ``gbreg ui``'s server.

Why a browser: what users see is the MLflow UI (React, ag-grid), not the REST API. This test pins
the facts the docs promise: the runs page address, the parent row that expands to its trials, the
parameters and metrics on a trial's page, and the heatmap artifact served as an image.

Selectors that hold for MLflow 3.17 (see ``RunsTable``): run-name cells are ag-grid cells
``[role=gridcell][col-id="attributes.`Run Name`"]``; a parent row's cell holds one icon-only expand
button; children are hidden until it is clicked.

Needs /usr/bin/chromium and Playwright (see tests/browser.py); skips without them unless CI=true.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from browser import ci_artifacts_dir, launch_chromium, require_browser

from gbreg.tracking.server import MlflowServer, free_port, run_page_url, runs_page_url

if TYPE_CHECKING:  # Playwright may be absent: the test then skips instead of failing to import
    from playwright.sync_api import Locator, Page

HEATMAP_ARTIFACT = "plots/heatmap_test_rmse.png"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TRIAL_PARAMS = ("reg_alpha", "reg_lambda")
TRIAL_METRIC = "zero_leaf_fraction"
PAGE_LOAD_TIMEOUT_MS = 60_000  # first load compiles a large JS bundle; slow CI runners need room
UI_STEP_TIMEOUT_MS = 15_000
VIEWPORT = {"width": 1600, "height": 900}
ASSISTANT_CLOSE_BUTTON = '[data-component-id="mlflow.assistant.chat_panel.close"]'


@dataclass(frozen=True)
class Trial:
    run_id: str
    name: str
    params: dict[str, str]
    metrics: dict[str, float]


@dataclass(frozen=True)
class StudyInStore:
    """What the UI should show: one study parent run, its trials, the heatmap on the parent."""

    store_uri: str
    artifact_uri: str
    experiment_id: str
    parent_run_id: str
    parent_name: str
    trials: list[Trial] = field(default_factory=list)


def create_study_runs(tmp_path: Path) -> StudyInStore:
    """A real study, run by ``gbreg.run_study`` into an embedded store under ``tmp_path``."""
    import os

    import yaml
    from mlflow.tracking import MlflowClient

    from gbreg import load_spec, run_study
    from gbreg.spec.tracking_config import load_tracking_config

    (tmp_path / "mlflow.yaml").write_text(yaml.safe_dump(
        {"tracking_uri": "sqlite:///mlflow.db", "artifact_location": "mlartifacts"}))
    spec_path = tmp_path / "quickstart.yaml"
    spec_path.write_text(yaml.safe_dump({
        "name": "quickstart", "data": {"source": "sklearn", "name": "diabetes"},
        "models": {"xgboost": {"n_estimators": 20, "max_depth": 3}},
        "sweep": {"reg_alpha": [0, 10], "reg_lambda": [1, 100]}}))
    saved = os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ["GBREG_MLFLOW_CONFIG"] = str(tmp_path / "mlflow.yaml")
    try:
        config = load_tracking_config()
        outcome = run_study(load_spec(spec_path), jobs=1, verbosity=-1, config=config)
    finally:
        os.environ.pop("GBREG_MLFLOW_CONFIG")
        if saved is not None:
            os.environ["MLFLOW_TRACKING_URI"] = saved
    client = MlflowClient(tracking_uri=config.tracking_uri)
    parent = client.get_run(outcome.parent_run_id)
    children = client.search_runs([outcome.experiment_id],
                                  filter_string=f"tags.`mlflow.parentRunId` = '{outcome.parent_run_id}'")
    trials = [Trial(run.info.run_id, run.info.run_name, {k: run.data.params[k] for k in TRIAL_PARAMS},
                    {TRIAL_METRIC: run.data.metrics[TRIAL_METRIC]}) for run in children]
    return StudyInStore(config.tracking_uri, config.artifact_location, outcome.experiment_id,
                        outcome.parent_run_id, parent.info.run_name, sorted(trials, key=lambda t: t.name))


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def page() -> Iterator[Page]:
    """A fresh headless Chromium page; skips (or fails under CI=true) without a browser."""
    require_browser()
    with launch_chromium() as browser:
        context = browser.new_context(viewport=VIEWPORT)
        try:
            yield context.new_page()
        finally:
            context.close()


@pytest.fixture
def study(tmp_path: Path) -> StudyInStore:
    return create_study_runs(tmp_path)


@pytest.fixture
def ui_server(study: StudyInStore) -> Iterator[MlflowServer]:
    """``gbreg ui``'s server on the study's store, as the CLI starts it."""
    with MlflowServer(study.store_uri, study.artifact_uri, port=free_port()) as server:
        print(f"MLflow server answered after {server.start_seconds:.1f} s at {server.url}")
        yield server
    print(f"MLflow server stopped in {server.stop_seconds:.2f} s")


# -- page helpers -------------------------------------------------------------------------------


class RunsTable:
    """The classic runs table (ag-grid) of MLflow 3.17's "Model training" view."""

    RUN_NAME_CELLS = '[role="gridcell"][col-id="attributes.`Run Name`"]'

    def __init__(self, page: Page) -> None:
        self.page = page

    def name_cell(self, run_name: str) -> Locator:
        exact = re.compile(re.escape(run_name) + r"\s*$")  # "λ=1" must not match "λ=100"
        return self.page.locator(self.RUN_NAME_CELLS).filter(has_text=exact)

    def listed_run_names(self) -> list[str]:
        """Run names as shown (each cell's text also holds the run colour, e.g. ``#93320b``)."""
        texts = self.page.locator(self.RUN_NAME_CELLS).all_inner_texts()
        return [text.splitlines()[-1].strip() for text in texts]

    def expand(self, parent_name: str) -> None:
        """Children stay hidden until the parent's "+" button (the only button in its cell) is clicked."""
        self.name_cell(parent_name).locator("button").click()

    def show_metric_and_param_columns(self) -> None:
        """Cosmetic, for the screenshot: hide empty Dataset/Models columns, show metrics and params.

        Uses the "Columns" tree menu (antd tree under the du-bois design system); best effort, since
        class names are not an API.
        """
        from playwright.sync_api import Error as PlaywrightError

        page = self.page
        try:
            page.get_by_role("button", name="Columns").first.click(timeout=UI_STEP_TIMEOUT_MS)
            # Group titles carry counts ("Metrics (1)", "Parameters (2)"): match their prefix.
            for title in ('="Dataset"', '="Models"', '^="Metrics ("', '^="Parameters ("'):
                node = page.locator(".du-bois-light-tree-treenode", has=page.locator(f"span[title{title}]"))
                node.locator(".du-bois-light-tree-checkbox").click(timeout=UI_STEP_TIMEOUT_MS)
            page.keyboard.press("Escape")
            resize = page.locator('.ag-header-cell[col-id="attributes.`Run Name`"] .ag-header-cell-resize')
            resize.dblclick(timeout=UI_STEP_TIMEOUT_MS)  # autosize: full run names in the screenshot
        except PlaywrightError as exc:  # a changed menu must not fail the real assertions
            page.keyboard.press("Escape")
            warnings.warn(f"could not arrange runs-table columns for the screenshot: {exc}", stacklevel=2)


def close_assistant_panel(page: Page) -> None:
    """MLflow 3.17 opens an "MLflow Assistant" side panel on first visit; it hides a third of the page.

    Its close button carries ``data-component-id="mlflow.assistant.chat_panel.close"``. The panel
    is optional chrome (absent in other versions), so not finding it is fine.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    close = page.locator(ASSISTANT_CLOSE_BUTTON)
    try:
        close.wait_for(timeout=5_000)  # the panel slides in shortly after the table renders
    except PlaywrightTimeoutError:
        return
    close.click(timeout=UI_STEP_TIMEOUT_MS)
    close.wait_for(state="hidden", timeout=UI_STEP_TIMEOUT_MS)


# -- the test -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_study_runs_params_metrics_and_heatmap_in_the_mlflow_ui(
        page: Page, ui_server: MlflowServer, study: StudyInStore) -> None:
    screenshots = ci_artifacts_dir()
    table = RunsTable(page)

    # The runs table lists the parent, collapsed.
    page.goto(runs_page_url(ui_server.url, study.experiment_id))
    table.name_cell(study.parent_name).wait_for(timeout=PAGE_LOAD_TIMEOUT_MS)
    close_assistant_panel(page)
    run_count = 1 + len(study.trials)
    page.get_by_text(f"{run_count} matching runs").wait_for(timeout=UI_STEP_TIMEOUT_MS)  # table footer

    # Expanding the parent row shows the trials nested under it.
    table.expand(study.parent_name)
    for trial in study.trials:
        table.name_cell(trial.name).wait_for(timeout=UI_STEP_TIMEOUT_MS)
    listed = table.listed_run_names()
    assert listed[0] == study.parent_name, f"parent should head its group, table shows {listed}"
    assert sorted(listed[1:]) == sorted(trial.name for trial in study.trials)

    table.show_metric_and_param_columns()
    page.wait_for_timeout(500)  # let ag-grid finish the column animation before the screenshot
    page.screenshot(path=str(screenshots / "mlflow_ui_runs.png"))

    # A trial's page shows its parameters and metric (clicked through, as a user would).
    trial = study.trials[-1]
    table.name_cell(trial.name).get_by_role("link", name=trial.name).click()
    page.wait_for_url(f"**/runs/{trial.run_id}**", timeout=UI_STEP_TIMEOUT_MS)
    assert page.url.startswith(run_page_url(ui_server.url, study.experiment_id, trial.run_id))
    for name in TRIAL_PARAMS:
        row = page.get_by_role("row").filter(has=page.get_by_text(name, exact=True))
        row.first.wait_for(timeout=PAGE_LOAD_TIMEOUT_MS)
        assert trial.params[name] in row.first.inner_text(), f"{name} row: {row.first.inner_text()!r}"
    metric_row = page.get_by_role("row").filter(has=page.get_by_text(TRIAL_METRIC, exact=True)).first
    shown = [float(number) for number in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", metric_row.inner_text())]
    assert any(math.isclose(value, trial.metrics[TRIAL_METRIC], rel_tol=1e-3, abs_tol=1e-4)
               for value in shown), f"{TRIAL_METRIC} row: {metric_row.inner_text()!r}"
    page.screenshot(path=str(screenshots / "mlflow_ui_trial.png"))

    # The heatmap is served as an image by the server's artifact endpoint ...
    response = page.request.get(
        f"{ui_server.url}/get-artifact",
        params={"path": HEATMAP_ARTIFACT, "run_uuid": study.parent_run_id})
    assert response.status == 200, response.text()
    assert response.headers["content-type"].split(";")[0] == "image/png"
    assert response.body().startswith(PNG_MAGIC)

    # ... and previewed by the UI on the parent's Artifacts tab.
    page.goto(run_page_url(ui_server.url, study.experiment_id, study.parent_run_id) + "/artifacts")
    folder, file_name = HEATMAP_ARTIFACT.split("/")
    page.get_by_text(folder, exact=True).first.click(timeout=PAGE_LOAD_TIMEOUT_MS)
    page.get_by_text(file_name, exact=True).first.click(timeout=UI_STEP_TIMEOUT_MS)
    preview = page.locator('img[src^="blob:"]').first
    preview.wait_for(timeout=UI_STEP_TIMEOUT_MS)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=preview.element_handle(),
                           timeout=UI_STEP_TIMEOUT_MS)
    page.screenshot(path=str(screenshots / "mlflow_ui_heatmap.png"))
