"""A tracking server that goes away while a study runs: every call waits for it, with backoff, up to
``server_wait_seconds`` (:class:`ServerClient`), and a refused login is said in one line."""

from __future__ import annotations

import functools
import logging
import os
import random
import re
import time
from collections.abc import Callable
from typing import TypeVar

import tenacity

from gbreg.errors import TrackingError

T = TypeVar("T")

def login_refused_message(uri: str, user: str | None) -> str:
    if user is None:
        return (f"tracking server {uri} requires a login: set MLFLOW_TRACKING_USERNAME and "
                "MLFLOW_TRACKING_PASSWORD in the environment (never in mlflow.yaml or the spec)")
    return (f"tracking server {uri} refused the login of {user!r}: wrong user name or password "
            "(MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD)")



_log = logging.getLogger("gbreg")
MAX_SERVER_BACKOFF_S = 20.0  # the longest pause between two attempts to reach a server that is away


class TrackingServerAway(Exception):
    """The tracking server did not answer for ``server_wait_seconds``. Not a GbregError: the study stops
    as on any error of the store (the runs it can reach marked FAILED, the resume command printed)."""


class ServerClient:
    """An ``MlflowClient`` on a tracking server, with every call waiting for a server that is away.

    A call that meets the server away or overloaded (what :func:`server_unavailable` recognises) is
    retried with jittered exponential backoff for up to ``wait_seconds``, then raises
    :class:`TrackingServerAway`. After that give-up each call is tried once (marking the stopped
    study's runs must not wait again), until one is answered. ``create_run`` is made safe to retry.
    A refused login or a missing permission becomes a :class:`TrackingError` (exit status 2).
    """

    def __init__(self, client, uri: str, wait_seconds: float, first_wait: float = 0.25):
        self._client = client
        self.uri = uri
        self.wait_seconds = wait_seconds
        self.first_wait = first_wait
        self._gave_up = False
        self._away_since: float | None = None  # when the warning of the current outage was logged

    def __getattr__(self, name: str):
        if name == "_client":  # not set yet (a copy being built): no recursion through this method
            raise AttributeError(name)
        attribute = getattr(self._client, name)
        if name.startswith("_") or not callable(attribute):
            return attribute

        @functools.wraps(attribute)
        def waiting(*args, **kwargs):
            return self.call(lambda: attribute(*args, **kwargs))
        return waiting

    def call(self, request: Callable[[], T]) -> T:
        """``request()``, waiting for the server as the class says."""
        if self._gave_up:
            result = self._answer(request)
        else:
            doubling = tenacity.wait_exponential(multiplier=self.first_wait, max=MAX_SERVER_BACKOFF_S)
            retryer = tenacity.Retrying(
                retry=tenacity.retry_if_exception_type(_ServerUnavailable),
                stop=tenacity.stop_before_delay(self.wait_seconds),
                wait=lambda state: doubling(state) * (0.5 + random.random()),  # drivers must not retry in step
                before_sleep=self._log_waiting)
            try:
                result = retryer(self._answer, request)
            except tenacity.RetryError as exc:
                self._gave_up = True
                cause = exc.last_attempt.exception().__cause__
                raise TrackingServerAway(f"tracking server {self.uri} did not answer for "
                                         f"{_seconds(self.wait_seconds)} ({_reason(cause)})") from cause
        self._gave_up = False
        if self._away_since is not None:
            _log.warning("tracking server %s answers again, after %.0f s", self.uri, time.monotonic() - self._away_since)
            self._away_since = None
        return result

    def _answer(self, request: Callable[[], T]) -> T:
        try:
            return request()
        except Exception as exc:
            if server_unavailable(exc):
                if self._gave_up:
                    raise TrackingServerAway(f"tracking server {self.uri} does not answer ({_reason(exc)})") from exc
                raise _ServerUnavailable() from exc
            status = http_status(exc)
            if status in (401, 403):
                raise TrackingError(self._refusal(status, exc)) from exc
            raise

    def _refusal(self, status: int, exc: BaseException) -> str:
        user = os.environ.get("MLFLOW_TRACKING_USERNAME")
        if status == 401:
            return login_refused_message(self.uri, user if os.environ.get("MLFLOW_TRACKING_PASSWORD") else None)
        return (f"tracking server {self.uri} denied {user or 'this user'!r} permission ({_reason(exc)}): "
                "writing a study's runs needs EDIT permission on its experiment; ask an admin of the server")

    def _log_waiting(self, state: tenacity.RetryCallState) -> None:
        if self._away_since is None:
            self._away_since = time.monotonic()
            cause = state.outcome.exception().__cause__
            _log.warning("tracking server %s is not answering (%s); waiting up to %s for it (server_wait_seconds "
                         "in mlflow.yaml)", self.uri, _reason(cause), _seconds(self.wait_seconds))

    def create_run(self, experiment_id: str, start_time: int | None = None, tags: dict | None = None,
                   run_name: str | None = None):
        """``MlflowClient.create_run``, safe to retry: an attempt whose answer was lost may have created the
        run, so before trying again the run this call would create (same start time, name and tags) is
        looked up and reused. (An attempt the server finishes only after the lookup, past the request
        timeout, can still leave a copy RUNNING; the next run of the study marks it FAILED.)"""
        start_time = start_time or int(time.time() * 1000)
        tags = {key: str(value) for key, value in (tags or {}).items()}
        tried = []

        def create():
            if tried:
                earlier = self._runs_created(experiment_id, start_time, tags, run_name)
                if earlier:
                    return earlier[0]
            tried.append(True)
            return self._client.create_run(experiment_id, start_time=start_time, tags=tags, run_name=run_name)
        return self.call(create)

    def _runs_created(self, experiment_id: str, start_time: int, tags: dict, run_name: str | None) -> list:
        runs = self._client.search_runs([experiment_id], filter_string=f"attributes.start_time = {start_time}",
                                        max_results=1000)
        return [run for run in runs if (run_name is None or run.info.run_name == run_name)
                and all(run.data.tags.get(key) == value for key, value in tags.items())]


class _ServerUnavailable(Exception):
    """An attempt met the server away (the MLflow error is its ``__cause__``): what ServerClient retries."""


def server_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the tracking server is away or overloaded, as MLflow's REST client reports it:
    a refused or cut connection, a timeout, or HTTP 408/429/5xx once urllib3's own retries are spent arrive
    as an MlflowException whose context is the requests error; another 5xx as its status code."""
    import requests

    transient = (requests.exceptions.ConnectionError, requests.exceptions.Timeout, requests.exceptions.RetryError,
                 requests.exceptions.ChunkedEncodingError, ConnectionError, TimeoutError)
    if any(isinstance(link, transient) for link in _chain(exc)):
        return True
    status = http_status(exc)
    return status is not None and status >= 500


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of an error the tracking server answered with, or None."""
    from mlflow.exceptions import MlflowException, RestException

    response = getattr(exc, "response", None)
    if response is not None and getattr(response, "status_code", None):  # requests.HTTPError
        return int(response.status_code)
    if isinstance(exc, RestException):  # the server's JSON error: its code says the status
        return exc.get_http_status_code()
    if isinstance(exc, MlflowException):  # any other answer: "... failed with error code 503 != 200 ..."
        found = re.search(r"failed with error code (\d{3})", str(exc))
        return int(found.group(1)) if found else None
    return None


def _chain(exc: BaseException | None):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _reason(exc: BaseException | None) -> str:
    """The innermost error of the chain, short: what actually went wrong (connection refused, a 503)."""
    links = list(_chain(exc))
    if not links:
        return "no answer"
    last = links[-1]
    while last.args and isinstance(last.args[-1], BaseException):  # urllib3's ProtocolError(text, error)
        last = last.args[-1]
    text = " ".join(str(last).split())
    text = text if len(text) <= 160 else text[:160].rsplit(" ", 1)[0] + " …"
    return f"{type(last).__name__}: {text}" if text else type(last).__name__


def _seconds(seconds: float) -> str:
    return f"{seconds:.3g} s" if seconds < 120 else f"{seconds / 60:.3g} min"
