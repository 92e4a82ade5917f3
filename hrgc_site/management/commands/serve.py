"""`manage.py serve`: prepare the database, then run gunicorn and the django-q2 clusters until Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from hrgc_site.bootstrap import ensure_admin, prepare_database
from hrgc_site.database import release_embedded_server

STOP_GRACE_SECONDS = 20


class Command(BaseCommand):
    help = "Start the dashboard (gunicorn) and the worker clusters; Ctrl-C stops everything it started."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--web-workers", type=int, default=int(os.environ.get("WEB_WORKERS", "2")))
        parser.add_argument("--no-workers", action="store_true", help="Serve pages only; run qcluster elsewhere")

    def handle(self, *args, host, port, web_workers, no_workers, **options):
        started = time.monotonic()
        prepare_database()
        password = ensure_admin()
        python = sys.executable
        base = str(settings.BASE_DIR)
        children: list[subprocess.Popen] = []

        # We bind the port and hand gunicorn the listening socket: `--port 0` takes a free port with no
        # pick-release-bind race, and the address printed below is the one really served.
        bare = host.strip("[]")
        family = socket.AF_INET6 if ":" in bare else socket.AF_INET
        listener = socket.create_server((bare, port), family=family)
        port = listener.getsockname()[1]
        listener.set_inheritable(True)

        def spawn(argv, env=None, pass_fds=()):
            # Own process group: a Ctrl-C in the terminal reaches us only, and we stop children in order.
            children.append(
                subprocess.Popen(
                    argv, cwd=base, env={**os.environ, **(env or {})}, start_new_session=True, pass_fds=pass_fds
                )
            )

        spawn(
            [
                python,
                "-m",
                "gunicorn",
                "hrgc_site.wsgi:application",
                "--bind",
                f"fd://{listener.fileno()}",
                "--workers",
                str(web_workers),
                "--threads",
                "8",
                "--worker-class",
                "gthread",
                "--timeout",
                "120",
                "--graceful-timeout",
                "10",
                "--access-logfile",
                "-",
            ],
            pass_fds=(listener.fileno(),),
        )
        listener.close()  # gunicorn holds it now
        if not no_workers:
            spawn([python, "manage.py", "qcluster"])
            spawn([python, "manage.py", "qcluster"], env={"Q_CLUSTER_NAME": settings.TRAINING_CLUSTER})

        url = f"http://{f'[{bare}]' if family == socket.AF_INET6 else bare}:{port}/"
        self.stdout.write(self.style.SUCCESS(f"HRGC is up at {url} (ready in {time.monotonic() - started:.1f} s)"))
        if password:
            self.stdout.write(
                self.style.WARNING(
                    f"First admin account created — log in as  admin / {password}  (shown once; "
                    "change it in the admin, or set HRGC_ADMIN_PASSWORD before the first run)."
                )
            )
        self.stdout.write(
            f"Data directory: {settings.DATA_DIR} · Ctrl-C stops the web server, the workers and the database."
        )

        stopping = False

        def request_stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        try:
            while not stopping:
                if any(child.poll() is not None for child in children):
                    self.stderr.write("A child process exited; stopping everything.")
                    break
                time.sleep(0.5)
        finally:
            self.stop_children(children)
            if not os.environ.get("DATABASE_URL"):
                from django.db import connections

                connections.close_all()
                # Stops the database unless a command started beside it is still using it.
                release_embedded_server(settings.DATA_DIR)
            self.stdout.write("Stopped.")

    def stop_children(self, children: list[subprocess.Popen]) -> None:
        for child in children:
            if child.poll() is None:
                # The leader only: gunicorn and the qcluster sentinel stop their own children in order.
                child.terminate()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                # A task still running past the grace period is killed; its job row turns "dead"
                # after the heartbeat timeout and can be resumed from its last checkpoint.
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
