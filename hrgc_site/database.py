"""Where the database is: DATABASE_URL when set, else an embedded PostgreSQL (pgserver) under the data dir."""

from __future__ import annotations

import atexit
import fcntl
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlparse

DB_NAME = "hrgc"


USERS_DIR = "pg-users"  # under the data dir: one file per live process using the embedded server
_registered: dict[Path, int] = {}  # data dir -> the pid that registered there (a forked child is not it)


def embedded_server(data_dir: Path):
    """Start (or join) the embedded server; every process of the dashboard shares the same one.

    Each process that uses it registers under `data_dir/pg-users`; when it ends, the last live
    user stops the server. A command run on its own therefore starts the database and stops it
    again, while a command run beside `manage.py serve` (which lives as long as `make run`) leaves
    it to serve. A user killed without a chance to clean up is pruned by the next one to end."""
    import warnings

    # platformdirs warns when XDG_RUNTIME_DIR is unset (servers, CI); its /tmp fallback is fine here.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    import pgserver

    pgdata = data_dir / "pgdata"
    pgdata.mkdir(parents=True, exist_ok=True)
    with _users_lock(data_dir):
        # cleanup_mode=None: pgserver's own exit hook never stops it; our user count does.
        server = pgserver.get_server(pgdata, cleanup_mode=None)
        exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}';")
        if "(1 row)" not in exists:
            server.psql(f"CREATE DATABASE {DB_NAME};")
        _register(data_dir)
    return server


@contextmanager
def _users_lock(data_dir: Path):
    """One process at a time starts, joins, leaves or stops the server of a data dir."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / f"{USERS_DIR}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _started_at(pid: int) -> str | None:
    """A process's start time (tells a live user from a reused pid), or None when it is gone."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return f"{process.create_time():.2f}"
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def _same_start(started: str, recorded: str) -> bool:
    """Whether two start times are one process's. Not string equality: Linux derives a start time from
    the boot time, which moves with every adjustment of the wall clock (NTP), so over a long test session
    a live user's start time drifts by hundredths of a second and it would be taken for dead (and the
    server stopped under it). A reused pid started within a second of the old process is not a concern."""
    try:
        return abs(float(started) - float(recorded)) < 1.0
    except ValueError:
        return False


def _register(data_dir: Path) -> None:
    key = data_dir.resolve()
    pid = os.getpid()
    if _registered.get(key) == pid:
        return
    users = key / USERS_DIR
    users.mkdir(exist_ok=True)
    (users / str(pid)).write_text(_started_at(pid) or "")
    _registered[key] = pid
    atexit.register(_release_at_exit, key, pid)


def live_users(data_dir: Path) -> list[int]:
    """Pids of the live processes using the embedded server; entries of dead ones are removed."""
    users = data_dir.resolve() / USERS_DIR
    live = []
    for entry in users.glob("*") if users.is_dir() else []:
        try:
            pid, recorded = int(entry.name), entry.read_text().strip()
        except (ValueError, OSError):
            continue
        started = _started_at(pid)
        if started is not None and _same_start(started, recorded):
            live.append(pid)
        else:
            entry.unlink(missing_ok=True)
    return sorted(live)


def release_embedded_server(data_dir: Path) -> bool:
    """This process stops using the server; the last live user stops it. True when it was stopped."""
    key = data_dir.resolve()
    if _registered.get(key) != os.getpid():
        return False  # never registered here, or a forked child of the process that did
    with _users_lock(key):
        del _registered[key]
        (key / USERS_DIR / str(os.getpid())).unlink(missing_ok=True)
        if live_users(key):
            return False
        stop_embedded_server(key)
        return True


def _release_at_exit(data_dir: Path, pid: int) -> None:
    if os.getpid() != pid or _registered.get(data_dir) != pid:
        return
    try:
        from django.db import connections

        connections.close_all()
    except Exception:  # noqa: BLE001 - Django may never have been set up in this process
        pass
    try:
        release_embedded_server(data_dir)
    except Exception as exc:  # noqa: BLE001 - never turn a clean exit into a traceback
        print(f"could not stop the embedded PostgreSQL under {data_dir}: {exc}", file=sys.stderr)


def stop_embedded_server(data_dir: Path) -> None:
    from pgserver import pg_ctl

    pgdata = data_dir / "pgdata"
    if (pgdata / "postmaster.pid").exists():
        user = "pgserver" if os.geteuid() == 0 else None
        if user:
            from pgserver.utils import ensure_prefix_permissions

            # The server runs as `pgserver`; something may have closed a parent folder since it started.
            ensure_prefix_permissions(pgdata)
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    from pgserver.postgres_server import PostgresServer

    # A later embedded_server() in this process must start it again, not reuse the stopped handle.
    handle = PostgresServer._instances.pop(pgdata.resolve(), None)
    if handle is not None:
        atexit.unregister(handle._cleanup)


def database_settings(data_dir: Path) -> dict:
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        import dj_database_url

        config = dj_database_url.parse(url, conn_max_age=60)
        if config["ENGINE"] != "django.db.backends.postgresql":
            raise RuntimeError("DATABASE_URL must point at PostgreSQL (postgres://...); HRGC runs on nothing else")
        return _with_name_override(config)
    uri = urlparse(embedded_server(data_dir).get_uri())
    host = parse_qs(uri.query).get("host", [""])[0]
    return _with_name_override(
        {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": DB_NAME,
            "USER": uri.username or "postgres",
            "PASSWORD": "",
            "HOST": host,
            "PORT": "",
            "CONN_MAX_AGE": 60,
            "OPTIONS": {},
        }
    )


def _with_name_override(config: dict) -> dict:
    # Processes that a test starts (gunicorn, qcluster) must use the test database the test runner made.
    if os.environ.get("HRGC_DB_NAME"):
        config["NAME"] = os.environ["HRGC_DB_NAME"]
    return config
