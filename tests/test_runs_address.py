"""Where the end of a run points the user: the UI that shows the store it logged to."""

from __future__ import annotations

from gbreg.report.summary import runs_table_address
from gbreg.spec.tracking_config import TrackingConfig


def test_a_tracking_server_is_its_own_ui() -> None:
    config = TrackingConfig("http://127.0.0.1:5071", None, ui_port=5000)
    assert runs_table_address("7", config) == \
        "http://127.0.0.1:5071/#/experiments/7/runs?workflowType=machine_learning"
    behind_a_path = TrackingConfig("https://mlflow.example.org/team/", None)
    assert runs_table_address("7", behind_a_path).startswith("https://mlflow.example.org/team/#/experiments/7/")


def test_a_local_store_is_shown_where_gbreg_ui_serves_it() -> None:
    config = TrackingConfig("sqlite:///tmp/mlflow.db", None, ui_host="0.0.0.0", ui_port=5123)
    assert runs_table_address("3", config) == "http://127.0.0.1:5123/#/experiments/3/runs?workflowType=machine_learning"
