"""The team set-up's real components, each its own process: a throw-away PostgreSQL cluster, ``gbreg server``
on it (artifacts proxied), and a Dask scheduler with two single-threaded workers.

Used by tests/test_team_setup.py and scripts/team-demo. Why real processes: what the team set-up must
survive (a database restart, a server or a worker that dies) happens between processes, which an
in-process cluster or a mocked store would hide. gbreg itself is reached only through its CLI, and pytest
is not imported here, so the demo script can use this module as it is.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psutil
import yaml

POSTGRES_OS_USER = "gbregpg"  # PostgreSQL refuses to run as root: as root, the cluster runs as this user
POSTGRES_DATABASE = "mlflow"
START_TIMEOUT_S = 120.0  # a deadline for a hang, not a wait: every start returns on its readiness event
POLL_S = 0.1
_DIRECT_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no CI proxy for loopback


# ---------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn(command: list[str], cwd: Path, log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start ``command`` in its own session (a Ctrl-C in the terminal reaches only the caller, which stops
    it in order), its output appended to ``log_path``."""
    with log_path.open("ab") as log:
        return subprocess.Popen(command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)


def kill_tree(pid: int, sig: signal.Signals = signal.SIGTERM, grace: float = 15.0) -> None:
    """Send ``sig`` to ``pid`` and every process below it (collected first: a parent that dies must not
    orphan its children out of reach), then SIGKILL whatever is still alive after ``grace`` seconds."""
    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for process in tree:
        try:
            process.send_signal(sig)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(tree, timeout=grace if sig != signal.SIGKILL else 5.0)
    for process in alive:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5.0)


def wait_until(ready: Callable[[], bool], what: str, timeout: float = START_TIMEOUT_S,
               died: Callable[[], str | None] = lambda: None) -> None:
    """Poll ``ready`` until it holds; raise if ``died`` reports a reason or the deadline passes."""
    deadline = time.monotonic() + timeout
    while not ready():
        reason = died()
        if reason:
            raise RuntimeError(f"{what}: {reason}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(POLL_S)


def log_tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return f"(no log at {path})"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _exited(process: subprocess.Popen, log_path: Path) -> Callable[[], str | None]:
    def reason() -> str | None:
        if process.poll() is None:
            return None
        return f"exited with status {process.returncode}; last lines of {log_path}:\n{log_tail(log_path)}"
    return reason


# ---------------------------------------------------------------------- PostgreSQL


def postgres_bin_dir() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: Debian's newest /usr/lib/postgresql/<version>/bin, else PATH."""
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: _version_key(p.parent.parent.name))
    if debian:
        return debian[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def _version_key(name: str) -> tuple:
    return tuple(int(part) if part.isdigit() else 0 for part in name.split("."))


def _unprivileged_user() -> str | None:
    """None when not root; as root, the system user the cluster runs as (created once)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(POSTGRES_OS_USER)
    except KeyError:
        created = subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                                  "--shell", "/usr/sbin/nologin", POSTGRES_OS_USER], capture_output=True, text=True)
        try:  # another session may have created it at the same moment
            pwd.getpwnam(POSTGRES_OS_USER)
        except KeyError:
            raise RuntimeError(f"cannot create the user {POSTGRES_OS_USER} for PostgreSQL: {created.stderr}") from None
    return POSTGRES_OS_USER


class PostgresCluster:
    """A throw-away cluster: ``initdb`` in ``folder`` (a new temp folder when None, removed at stop), a free
    port on 127.0.0.1, trust authentication (loopback only), its socket in the folder, one database."""

    def __init__(self, bin_dir: Path, folder: Path | None = None, port: int | None = None):
        self.bin_dir = bin_dir
        self.owns_folder = folder is None
        self.folder = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="gbreg-pg-"))
        self.port = port or free_port()
        self.user = _unprivileged_user()
        self.data = self.folder / "data"
        self.log_path = self.folder / "postgres.log"

    @property
    def uri(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{POSTGRES_DATABASE}"

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin_dir / program), *args]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(command, cwd=self.folder, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{program} {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}\n"
                               f"{log_tail(self.log_path)}")

    def start(self) -> PostgresCluster:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "socket").mkdir(exist_ok=True)
        if self.user is not None:
            shutil.chown(self.folder, self.user, self.user)
            for path in self.folder.rglob("*"):
                shutil.chown(path, self.user, self.user)
        if not (self.data / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale")
        options = f"-p {self.port} -k {self.folder / 'socket'} -c listen_addresses=127.0.0.1"
        # -w: pg_ctl returns once the server accepts connections (its readiness event, not a sleep)
        self._run("pg_ctl", "start", "-w", "-t", str(int(START_TIMEOUT_S)), "-D", str(self.data),
                  "-l", str(self.log_path), "-o", options)
        if not self._database_exists():
            self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", POSTGRES_DATABASE)
        return self

    def _database_exists(self) -> bool:
        import psycopg2

        with psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres") as connection:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (POSTGRES_DATABASE,))
                return cursor.fetchone() is not None

    def shut_down(self) -> None:
        """Fast shutdown (open connections are cut), keeping the data: ``start`` brings it back."""
        self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data))

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            return None

    def stop(self) -> None:
        """Fast shutdown; the postmaster's tree is killed if that fails; a temp folder is removed."""
        pid = self.postmaster_pid()
        if pid is not None:
            try:
                self.shut_down()
            except RuntimeError:
                kill_tree(pid, signal.SIGQUIT)  # PostgreSQL's immediate shutdown
        if self.owns_folder:
            shutil.rmtree(self.folder, ignore_errors=True)


# ---------------------------------------------------------------------- the tracking server


CALLER_SETTINGS = ("MLFLOW_TRACKING_URI", "GBREG_MLFLOW_CONFIG", "MLFLOW_TRACKING_USERNAME",
                   "MLFLOW_TRACKING_PASSWORD", "MLFLOW_AUTH_CONFIG_PATH", "MLFLOW_AUTH_ADMIN_PASSWORD")


def _clean_env() -> dict[str, str]:
    """The caller's environment without what would point gbreg at another store, mlflow.yaml or login."""
    return {k: v for k, v in os.environ.items() if k not in CALLER_SETTINGS}


def health_ok(url: str) -> bool:
    try:
        with _DIRECT_HTTP.open(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


class TrackingServer:
    """``gbreg server`` in ``folder``, whose mlflow.yaml names the store; artifacts under folder/artifacts,
    proxied (runs get ``mlflow-artifacts:/`` URIs). Restartable on the same port. ``admin_password``: with
    ``--auth`` (users in folder/basic_auth.db, the first start creates the admin with this password)."""

    def __init__(self, folder: Path, store_uri: str, port: int | None = None, host: str = "127.0.0.1",
                 admin_password: str | None = None):
        self.folder = folder
        self.port = port or free_port()
        self.host = host
        self.admin_password = admin_password
        self.process: subprocess.Popen | None = None
        self.starts = 0
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "mlflow.yaml").write_text(yaml.safe_dump({
            "tracking_uri": store_uri, "artifact_location": "artifacts", "ui": {"host": host, "port": self.port}}))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.folder / f"server-{self.starts}.log"

    def start(self) -> TrackingServer:
        """Start ``gbreg server`` and return once ``/health`` answers (the store is migrated by then)."""
        self.starts += 1
        command = [sys.executable, "-m", "gbreg", "server", "--host", self.host, "--port", str(self.port)]
        env = _clean_env()
        if self.admin_password is not None:
            command.append("--auth")
            env["MLFLOW_AUTH_ADMIN_PASSWORD"] = self.admin_password
        self.process = spawn(command, self.folder, self.log_path, env=env)
        wait_until(lambda: health_ok(self.url), f"gbreg server on {self.url}",
                   died=_exited(self.process, self.log_path))
        return self

    def kill(self) -> None:
        """The fault: SIGKILL ``gbreg server`` and the MLflow server below it, no chance to clean up."""
        if self.process is not None:
            kill_tree(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        """SIGTERM: ``gbreg server`` stops its MLflow server in order; leftovers are killed."""
        if self.process is not None:
            kill_tree(self.process.pid, signal.SIGTERM)
            self.process.wait()
            self.process = None


# ---------------------------------------------------------------------- Dask


class DaskCluster:
    """``dask scheduler`` and ``n_workers`` x ``dask worker --nworkers 1 --nthreads 1``, each its own process
    tree (a worker is a nanny and the worker process it restarts), on 127.0.0.1."""

    def __init__(self, folder: Path, n_workers: int = 2):
        self.folder = folder
        self.n_workers = n_workers
        self.scheduler_file = folder / "scheduler.json"
        self.scheduler: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def address(self) -> str:
        return json.loads(self.scheduler_file.read_text())["address"]

    def _scheduler_file_written(self) -> bool:
        try:
            return bool(self.address)
        except (OSError, ValueError, KeyError):
            return False

    def start(self) -> DaskCluster:
        dask = [sys.executable, "-m", "dask"]
        self.scheduler_file.unlink(missing_ok=True)
        log = self.folder / "scheduler.log"
        self.scheduler = spawn([*dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                "--scheduler-file", str(self.scheduler_file)], self.folder, log, env=_clean_env())
        wait_until(self._scheduler_file_written, "dask scheduler", died=_exited(self.scheduler, log))
        for index in range(self.n_workers):
            self.workers.append(spawn([*dask, "worker", "--scheduler-file", str(self.scheduler_file), "--host",
                                       "127.0.0.1", "--nworkers", "1", "--nthreads", "1", "--no-dashboard"],
                                      self.folder, self.folder / f"worker-{index}.log", env=_clean_env()))
        self.wait_for_workers(self.n_workers)
        return self

    def client(self):
        from distributed import Client

        return Client(self.address, set_as_default=False, timeout=30)

    def wait_for_workers(self, n: int, timeout: float = START_TIMEOUT_S) -> None:
        """Until the scheduler has ``n`` workers (a nanny restarts a killed one in seconds)."""
        with self.client() as client:
            client.wait_for_workers(n, timeout=timeout)

    def kill_scheduler(self) -> None:
        """The fault: SIGKILL the scheduler (its workers stay, without a scheduler)."""
        if self.scheduler is not None:
            kill_tree(self.scheduler.pid, signal.SIGKILL)
            self.scheduler.wait()

    def stop(self) -> None:
        for worker in self.workers:
            kill_tree(worker.pid)
            worker.wait()
        if self.scheduler is not None:
            kill_tree(self.scheduler.pid)
            self.scheduler.wait()
        self.workers, self.scheduler = [], None


# ---------------------------------------------------------------------- all three


class TeamServices:
    """PostgreSQL, ``gbreg server`` on it and a Dask cluster under ``folder``; a context manager that takes
    them all down (in reverse order) even when starting one of them failed."""

    def __init__(self, folder: Path, bin_dir: Path, postgres_folder: Path | None = None,
                 server_port: int | None = None, server_host: str = "127.0.0.1", admin_password: str | None = None):
        self.postgres = PostgresCluster(bin_dir, postgres_folder)
        self.server = TrackingServer(folder / "server", self.postgres.uri, server_port, server_host, admin_password)
        self.dask = DaskCluster(folder / "dask")

    def start(self) -> TeamServices:
        try:
            self.postgres.start()
            self.server.start()
            self.dask.start()
        except BaseException:
            self.stop()
            raise
        return self

    def driver_config(self, dask: bool = True, **settings) -> dict:
        """A driver's mlflow.yaml: the server, the scheduler when ``dask``, and other ``settings``."""
        config: dict = {"tracking_uri": self.server.url, **settings}
        if dask:
            config["executor"] = {"kind": "dask", "scheduler": self.dask.address}
        return config

    def stop(self) -> None:
        for stop in (self.dask.stop, self.server.stop, self.postgres.stop):
            try:
                stop()
            except Exception as exc:  # noqa: BLE001 - the others must still be stopped
                print(f"warning: stopping failed: {type(exc).__name__}: {exc}", file=sys.stderr)

    def __enter__(self) -> TeamServices:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
