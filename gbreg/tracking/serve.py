"""``gbreg ui`` and ``gbreg server``: a local MLflow server (:class:`gbreg.tracking.server.MlflowServer`)
that serves until Ctrl-C or SIGTERM, with its addresses printed, and is stopped cleanly either way."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, TextIO

from gbreg.tracking.server import WILDCARD_HOSTS, MlflowServer, MlflowServerError, runs_page_url

if TYPE_CHECKING:
    from gbreg.spec.tracking_config import TrackingConfig


def serve_forever(config: TrackingConfig, host: str | None = None, port: int | None = None,
                  *, proxy_artifacts: bool = False, experiments: Mapping[str, str] | None = None,
                  out: TextIO | None = None, auth: bool = False) -> None:
    """Run the MLflow UI/tracking server on the configured store until KeyboardInterrupt: the CLI turns
    Ctrl-C and SIGTERM into one (:func:`gbreg.cli_process.stop_signals_interrupt`).

    Used by ``gbreg ui`` and ``gbreg server``. ``experiments`` (name -> experiment id, e.g. for
    ``gbreg ui --study``) get direct links to their runs tables, which MLflow 3.17 does not open by
    default. When ``tracking_uri`` already names a server there is nothing to start: its address is
    printed instead. Raises ``MlflowServerError`` (a ``TrackingError``) when the server cannot
    start or dies while serving.
    """
    out = out or sys.stdout
    if config.is_server:
        print(f"tracking_uri is already an MLflow server; open {config.tracking_uri}", file=out)
        return
    server = MlflowServer.from_config(config, host=host, port=port, proxy_artifacts=proxy_artifacts, auth=auth)
    try:
        print(f"Starting the MLflow server on {server.host}:{server.port} "
              f"(store {config.tracking_uri}) ...", file=out, flush=True)
        server.start()
        _print_addresses(server, config, out, experiments or {})
        while server.is_running():
            time.sleep(0.5)
        raise MlflowServerError(f"the MLflow server stopped unexpectedly\n{server.log_tail()}")
    except KeyboardInterrupt:
        print("\nStopping the MLflow server ...", file=out, flush=True)
    finally:
        # A second Ctrl-C while stopping would orphan the server: stopping takes ~1 s, let it finish.
        previous_sigint = _set_signal_handler(signal.SIGINT, signal.SIG_IGN)
        try:
            server.stop()
        finally:
            _set_signal_handler(signal.SIGINT, previous_sigint)
    print("MLflow server stopped.", file=out, flush=True)


def _set_signal_handler(signum: signal.Signals, handler: object) -> object:
    """Install a handler, returning the previous one; a no-op (None) outside the main thread."""
    if handler is None:
        return None
    try:
        return signal.signal(signum, handler)  # type: ignore[arg-type]
    except ValueError:  # signal only works in the main thread
        return None


def _print_addresses(server: MlflowServer, config: TrackingConfig, out: TextIO,
                     experiments: Mapping[str, str]) -> None:
    seconds = f" in {server.start_seconds:.1f} s" if server.start_seconds is not None else ""
    print(f"MLflow UI ready{seconds}: {server.url}", file=out)
    print(f"  tracking URI for clients: {server.url}", file=out)
    print(f"  backend store:  {config.tracking_uri}", file=out)
    if config.artifact_location:
        print(f"  artifacts:      {config.artifact_location}", file=out)
    if server.auth_database is not None:
        users = os.environ.get("MLFLOW_AUTH_CONFIG_PATH") or server.auth_database
        print(f"  login:          MLflow basic auth, users in {users}; drivers set MLFLOW_TRACKING_USERNAME "
              "and MLFLOW_TRACKING_PASSWORD", file=out)
    for name, experiment_id in experiments.items():
        print(f"  runs of {name}: {runs_page_url(server.url, experiment_id)}", file=out)
    if not experiments:
        print(f"  runs of an experiment: {runs_page_url(server.url, '<experiment id>')}", file=out)
    if server.host in WILDCARD_HOSTS:
        print("  note: bound to all interfaces; MLflow only accepts Host headers for localhost "
              "unless --allowed-hosts is configured", file=out)
    print("Press Ctrl-C to stop.", file=out, flush=True)
