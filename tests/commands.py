"""Management commands the way a shell runs them: `python manage.py ...` subprocesses on the test database.

`call_command` skips the argument parsing a shell goes through (that is how `train --set` crashed
unseen), so the README's commands are also tested through these helpers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    """The test database as a DATABASE_URL (the embedded server listens on a Unix socket only)."""
    from django.db import connection

    conf = connection.settings_dict
    host = quote(conf["HOST"], safe="")
    return f"postgres://{conf['USER']}@{host}/{conf['NAME']}"


def command_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """Environment of a command run on the test database with its own data directory."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("HRGC_DB_NAME", "DATABASE_URL", "GITHUB_TOKEN", "GITHUB_API_URL")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="hrgc_site.test_settings",
        DATABASE_URL=database_url(),
        HRGC_DATA_DIR=str(data_dir),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def manage(*args: str, env: dict[str, str], timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    """Run `python manage.py ARGS` to its end; a non-zero exit fails the test with the command's output."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"manage.py {' '.join(args)} exited {result.returncode}\n--- stdout\n{result.stdout}\n"
            f"--- stderr\n{result.stderr}"
        )
    return result


def spawn(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start `python manage.py ARGS` in its own session (stopping it takes its children along)."""
    handle = open(log, "ab")  # noqa: SIM115 - the child writes to it until it ends
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_for_line(log: Path, needle: str, process: subprocess.Popen, timeout: float = 120) -> str:
    """The first line of `log` that contains `needle`; fails when the process ends or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        for line in text.splitlines():
            if needle in line:
                return line
        if process.poll() is not None:
            raise AssertionError(f"the process exited {process.returncode} before printing {needle!r}:\n{text}")
        time.sleep(0.2)
    raise AssertionError(f"no {needle!r} within {timeout:.0f} s:\n{log.read_text(errors='replace')}")


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
    """Signal the process and wait; a process that does not end is killed with its group (and fails the caller)."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise AssertionError(f"process {process.pid} ignored signal {sig} for {timeout:.0f} s") from None
    return process.returncode


def fresh_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """Environment of a command on a data directory of its own: its own embedded PostgreSQL, as a new user has."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("HRGC_DB_NAME", "DATABASE_URL", "HRGC_ADMIN_PASSWORD", "GITHUB_TOKEN", "GITHUB_API_URL")
    }
    env.update(DJANGO_SETTINGS_MODULE="hrgc_site.settings", HRGC_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def postgres_processes(pgdata: Path) -> list:
    """The PostgreSQL server processes whose data directory is `pgdata`."""
    import psutil

    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if process.info["name"] == "postgres" and str(pgdata) in cmdline:
            found.append(process)
    return found
