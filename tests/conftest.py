"""Shared fixtures: users in each role, a live stack (gunicorn + django-q2 clusters) and a real Chromium."""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("HRGC_CHROMIUM", "/usr/bin/chromium")
# Playwright's sync API runs an event loop in the test thread; the ORM calls the tests make between
# browser steps are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

OPERATOR_PASSWORD = "operator-pass-1"
VIEWER_PASSWORD = "viewer-pass-1"


def _make_user(username: str, password: str, group: str | None, superuser: bool = False):
    from django.contrib.auth.models import Group, User

    from hrgc_site.roles import ensure_groups

    ensure_groups()
    if superuser:
        user = User.objects.create_superuser(username, password=password)
    else:
        user = User.objects.create_user(username, password=password)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def operator_user(db):
    return _make_user("otto", OPERATOR_PASSWORD, "operators")


@pytest.fixture
def viewer_user(db):
    return _make_user("vera", VIEWER_PASSWORD, "viewers")


@pytest.fixture
def operator_client(client, operator_user):
    client.force_login(operator_user)
    return client


@pytest.fixture
def viewer_client(client, viewer_user):
    client.force_login(viewer_user)
    return client


class LiveStack:
    """gunicorn and both django-q2 clusters as real processes, on the test database."""

    def __init__(self, db_name: str, data_dir: Path):
        # Bound here and handed to gunicorn (fd://): a port picked, released and bound again could be
        # taken in between by another process.
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.set_inheritable(True)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_dir = data_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "hrgc_site.test_settings",
            "HRGC_DB_NAME": db_name,
            "HRGC_DATA_DIR": str(data_dir),
            "PYTHONUNBUFFERED": "1",
            "HRGC_WORKERS": "2",
        }
        self.processes: dict[str, subprocess.Popen] = {}

    def _spawn(self, name: str, argv: list[str], env: dict | None = None, pass_fds: tuple = ()) -> None:
        log = open(self.log_dir / f"{name}.log", "ab")
        # Own session: stopping it takes its workers along, even when the test run is cut short.
        self.processes[name] = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=pass_fds,
        )

    def start(self) -> LiveStack:
        kill_stale_processes(self.env["HRGC_DB_NAME"], self.env["HRGC_DATA_DIR"])
        atexit.register(self.stop)
        python = sys.executable
        self._spawn(
            "web",
            [
                python,
                "-m",
                "gunicorn",
                "hrgc_site.wsgi:application",
                "--bind",
                f"fd://{self._listener.fileno()}",
                "--workers",
                "1",
                "--threads",
                "8",
                "--worker-class",
                "gthread",
                "--timeout",
                "120",
            ],
            pass_fds=(self._listener.fileno(),),
        )
        self._listener.close()  # gunicorn holds it now
        self.start_cluster()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/accounts/login/", timeout=10).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"the live server did not come up; see {self.log_dir}")

    def start_cluster(self) -> None:
        """Start whichever of the two clusters is not running (a test may have killed one)."""
        python = sys.executable
        clusters = {"qcluster": {}, "qcluster-long": {"Q_CLUSTER_NAME": "long"}}
        for name, env in clusters.items():
            process = self.processes.get(name)
            if process is None or process.poll() is not None:
                self._spawn(name, [python, "manage.py", "qcluster"], env=env)

    def stop_cluster(self, sig: int | None = None) -> None:
        for name in ("qcluster", "qcluster-long"):
            process = self.processes.pop(name, None)
            if process and process.poll() is None:
                if sig is None:
                    process.terminate()
                else:
                    process.send_signal(sig)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    _kill_group(process)

    def stop(self) -> None:
        self.stop_cluster()
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    _kill_group(process)
        self.processes.clear()


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def kill_stale_processes(db_name: str, data_dir: str) -> None:
    """Servers and workers a killed earlier run left on this test database would steal its tasks.

    Only this checkout's (same data directory): another checkout's test run on the same machine uses the same
    database name on its own embedded server, and its live stack is not stale."""
    for proc_dir in Path("/proc").glob("[0-9]*"):
        try:
            environ = (proc_dir / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        ours = f"HRGC_DB_NAME={db_name}".encode() in environ and f"HRGC_DATA_DIR={data_dir}".encode() in environ
        if ours and int(proc_dir.name) != os.getpid():
            try:
                os.kill(int(proc_dir.name), signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture(scope="session")
def _live_stack_session(django_db_setup, django_db_blocker):
    from django.conf import settings
    from django.db import connection

    with django_db_blocker.unblock():
        db_name = connection.settings_dict["NAME"]
    stack = LiveStack(db_name, Path(settings.DATA_DIR)).start()
    yield stack
    stack.stop()
    # Sessions of the stopped processes can linger a moment; the test database must be droppable.
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        others = "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        cursor.execute(f"SELECT pg_terminate_backend(pid) {others}")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            cursor.execute(f"SELECT count(*) {others}")
            if cursor.fetchone()[0] == 0:
                break
            time.sleep(0.2)
    with django_db_blocker.unblock():
        connection.close()  # ours too: dropping the test database must find nobody on it


@pytest.fixture
def live_stack(_live_stack_session, transactional_db):
    """A running dashboard and worker cluster; data the test writes is committed so they see it.

    The clusters run only during tests that ask for them: left running, they would take the tasks
    that later tests enqueue and run by hand."""
    _live_stack_session.start_cluster()
    yield _live_stack_session
    _live_stack_session.stop_cluster()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def login(page, base_url: str, username: str, password: str) -> None:
    page.goto(base_url + "/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


@pytest.fixture
def operator_page(page, live_stack, operator_user):
    login(page, live_stack.url, operator_user.username, OPERATOR_PASSWORD)
    return page


@pytest.fixture(scope="session")
def dataset_files(tmp_path_factory) -> Path:
    """A real dataset directory (meta.json, train/val bins, tokenizer.model), built once per session and
    shared by the training, export and browser tests (make_dataset in tests/training/support.py copies it)."""
    from tests.training.support import build_dataset_files

    return build_dataset_files(tmp_path_factory.mktemp("run-dataset"))
