"""Where the database is: DATABASE_URL when set, else an embedded PostgreSQL (pgserver) under the data dir."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, urlparse

DB_NAME = "hrgc"


def embedded_server(data_dir: Path):
    """Start (or join) the embedded server; every process of the dashboard shares the same one.

    cleanup_mode=None: the server outlives the process that started it, so the web server,
    the workers and management commands never stop it under each other; `manage.py serve`
    stops it on exit."""
    import warnings

    # platformdirs warns when XDG_RUNTIME_DIR is unset (servers, CI); its /tmp fallback is fine here.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    import pgserver

    pgdata = data_dir / "pgdata"
    pgdata.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode=None)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DB_NAME};")
    return server


def stop_embedded_server(data_dir: Path) -> None:
    from pgserver import pg_ctl

    pgdata = data_dir / "pgdata"
    if (pgdata / "postmaster.pid").exists():
        user = "pgserver" if os.geteuid() == 0 else None
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)


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
