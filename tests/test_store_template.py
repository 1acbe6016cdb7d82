"""A new embedded store starts as a copy of a migrated template (gbreg.tracking.store_template): the same
store MLflow would build, without running its migrations again; a template of another schema is ignored."""

from __future__ import annotations

import sqlite3

import yaml

from gbreg.spec.tracking_config import load_tracking_config
from gbreg.tracking import store_template
from gbreg.tracking.store import open_store


def new_store(folder, monkeypatch):
    folder.mkdir()
    (folder / "mlflow.yaml").write_text(yaml.safe_dump({"tracking_uri": "sqlite:///mlflow.db",
                                                        "artifact_location": "mlartifacts"}))
    monkeypatch.chdir(folder)
    return load_tracking_config()


def rows(path, sql):
    with sqlite3.connect(path) as connection:
        return connection.execute(sql).fetchall()


def test_the_first_new_store_leaves_a_template_and_the_next_starts_from_it(tmp_path, monkeypatch):
    monkeypatch.setenv(store_template.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    first = open_store(new_store(tmp_path / "a", monkeypatch))
    template = store_template.template_path()
    assert template.is_file()
    assert rows(template, "SELECT count(*) FROM experiments") == [(0,)], "the template holds no experiment"
    assert store_template.schema_revision(template) == store_template.expected_revision()
    first.create_experiment("kept out of the template")
    assert rows(template, "SELECT count(*) FROM experiments") == [(0,)]

    config = new_store(tmp_path / "b", monkeypatch)
    assert store_template.start_from_template(config.sqlite_path)  # what open_store does for a new store
    config.sqlite_path.unlink()
    client = open_store(config)
    [(default_location,)] = rows(config.sqlite_path, "SELECT artifact_location FROM experiments "
                                                      "WHERE experiment_id = 0")
    assert str(tmp_path / "b") in default_location, "MLflow adds its Default experiment for this store"
    experiment = client.create_experiment("x")
    run = client.create_run(experiment)
    client.log_metric(run.info.run_id, "m", 1.5)
    assert client.get_run(run.info.run_id).data.metrics == {"m": 1.5}


def test_a_template_of_another_schema_revision_is_not_used(tmp_path, monkeypatch):
    monkeypatch.setenv(store_template.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    open_store(new_store(tmp_path / "a", monkeypatch))
    template = store_template.template_path()
    with sqlite3.connect(template) as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'some_other_revision'")
    config = new_store(tmp_path / "b", monkeypatch)
    assert not store_template.start_from_template(config.sqlite_path)
    client = open_store(config)  # built by MLflow's migrations instead
    assert store_template.schema_revision(config.sqlite_path) == store_template.expected_revision()
    assert client.search_experiments()[0].name == "Default"
