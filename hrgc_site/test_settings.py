"""Settings for the test suite: the same real Postgres and workers, with their own data directory."""

import os
from pathlib import Path

os.environ.setdefault("HRGC_DATA_DIR", str(Path(__file__).resolve().parent.parent / "var" / "test"))
# Killed-worker tests wait for a job to be taken for dead: beat often, give up sooner.
os.environ.setdefault("HRGC_HEARTBEAT_SECONDS", "1")
os.environ.setdefault("HRGC_HEARTBEAT_DEAD_AFTER", "10")
# The GitHub-shaped test server listens on loopback: allow it (as an operator would for a local mirror).
os.environ.setdefault("HRGC_GITHUB_ALLOWED_HOSTS", "127.0.0.1,localhost")

from hrgc_site.settings import *  # noqa: E402,F401,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins; tests only

# Several test sessions may share one Postgres (parallel work, a dev server running): each can pick
# its own test database with HRGC_TEST_DB_SUFFIX.
if os.environ.get("HRGC_TEST_DB_SUFFIX"):
    DATABASES["default"]["TEST"] = {"NAME": f"test_hrgc_{os.environ['HRGC_TEST_DB_SUFFIX']}"}  # noqa: F405
