"""Processes end cleanly: a command stops the embedded PostgreSQL it started, and `manage.py serve`
(what `make run` runs) leaves no child and no database behind after Ctrl-C."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest
import requests

from hrgc_site.database import stop_embedded_server
from tests.commands import ROOT, fresh_env, manage, postgres_processes, spawn, stop, wait_for_line

pytestmark = pytest.mark.slow


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def data_dir():
    # Not under tmp_path: pytest closes its base folder (0700) again, and the server runs as another user.
    base = Path(tempfile.mkdtemp(prefix="hrgc-lifecycle-"))
    data = base / "data"
    yield data
    # Whatever the outcome, no server of this test may outlive it.
    if postgres_processes(data / "pgdata"):
        stop_embedded_server(data)
    shutil.rmtree(base, ignore_errors=True)


def test_a_command_stops_the_database_it_started_unless_another_process_still_uses_it(data_dir, tmp_path):
    env = fresh_env(data_dir)
    pgdata = data_dir / "pgdata"
    manage("migrate", "--verbosity", "0", env=env)
    assert (pgdata / "PG_VERSION").exists()
    assert postgres_processes(pgdata) == []

    # A long-lived user (as `serve` is) keeps it running while a command comes and goes.
    holder_log = tmp_path / "holder.log"
    holder = spawn("shell", "-c", "import time; print('holding'); time.sleep(600)", env=env, log=holder_log)
    try:
        wait_for_line(holder_log, "holding", holder)
        assert "snapshot" not in manage("snapshot", "list", env=env).stderr
        assert postgres_processes(pgdata), "the command stopped the database under a process still using it"
    finally:
        stop(holder, signal.SIGINT)
    assert postgres_processes(pgdata) == [], "the last user to end did not stop the database"

    # A user killed without cleaning up does not keep it alive for ever: the next command to end prunes it.
    killed = spawn("shell", "-c", "import time; print('holding'); time.sleep(600)", env=env, log=tmp_path / "k.log")
    wait_for_line(tmp_path / "k.log", "holding", killed)
    stop(killed, signal.SIGKILL)
    manage("snapshot", "list", env=env)
    assert postgres_processes(pgdata) == []


def test_the_first_command_on_a_fresh_data_dir_sets_up_the_database_even_two_at_once(data_dir, tmp_path):
    """A new user's first command is a pipeline command, not `migrate`: it must not fail on missing tables."""
    env = fresh_env(data_dir)
    commands = [
        subprocess.Popen(
            [sys.executable, "manage.py", "snapshot", "list"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [command.communicate(timeout=300) for command in commands]
    for command, (stdout, stderr) in zip(commands, outputs, strict=True):
        assert command.returncode == 0, stderr
        assert stdout.startswith("No snapshots yet"), stdout
    # Exactly one of them migrated; the other waited for it and found the tables there.
    assert sum("first use): migrated it" in stderr for _, stderr in outputs) == 1
    again = manage("snapshot", "list", env=env)
    assert "migrated" not in again.stderr and again.stdout.startswith("No snapshots yet")
    assert postgres_processes(data_dir / "pgdata") == []


def test_serve_prints_an_operator_password_and_ctrl_c_stops_every_child_and_the_database(data_dir, tmp_path):
    env = fresh_env(data_dir, WEB_WORKERS="1", HRGC_WORKERS="1", HRGC_TRAIN_WORKERS="1")
    log = tmp_path / "serve.log"
    serve = spawn("serve", "--port", "0", env=env, log=log)
    children: list[psutil.Process] = []
    try:
        up = wait_for_line(log, "HRGC is up at", serve, timeout=300)
        url = re.search(r"(http://[^ ]+?)/? ", up).group(1)
        assert not url.endswith(":0")
        password = re.search(r"admin / (\S+)", wait_for_line(log, "log in as", serve)).group(1)

        session = requests.Session()
        login_page = session.get(url + "/accounts/login/", timeout=60)
        assert login_page.status_code == 200
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text).group(1)
        answer = session.post(
            url + "/accounts/login/",
            data={"username": "admin", "password": password, "csrfmiddlewaretoken": token},
            timeout=60,
        )
        assert answer.status_code == 200 and "/accounts/login/" not in answer.url, "the printed password failed"
        add = session.get(url + "/corpus/add/", timeout=60)
        assert add.status_code == 200 and "Operators only" not in add.text and "Import the sample" in add.text

        import psycopg

        with psycopg.connect(host=str(data_dir / "pgdata"), user="postgres", dbname="hrgc") as db:
            groups = db.execute(
                "SELECT g.name FROM auth_user u JOIN auth_user_groups ug ON ug.user_id = u.id "
                "JOIN auth_group g ON g.id = ug.group_id WHERE u.username = 'admin'"
            ).fetchall()
        assert ("operators",) in groups

        children = psutil.Process(serve.pid).children(recursive=True)
        names = " ".join(" ".join(child.cmdline()) for child in children)
        assert "gunicorn" in names and "qcluster" in names
        assert stop(serve, signal.SIGINT, timeout=120) == 0
        assert "Stopped." in log.read_text()
        left = [child for child in children if _alive(child)]
        assert left == [], f"children left after Ctrl-C: {left}"
        assert postgres_processes(data_dir / "pgdata") == [], "the database outlived serve"
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
        for child in children:
            if _alive(child):
                child.kill()


def test_a_test_session_stops_the_database_it_started(data_dir):
    """`make test` (and `.ci/run`) leave no test server behind: the pytest process is the server's user."""
    env = fresh_env(data_dir, DJANGO_SETTINGS_MODULE="hrgc_site.test_settings")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/site/test_dead_jobs.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (data_dir / "pgdata" / "PG_VERSION").exists()  # it did run on its own server
    assert postgres_processes(data_dir / "pgdata") == [], "the test session left its database running"
