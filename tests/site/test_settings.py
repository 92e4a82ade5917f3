"""Settings come from the environment: database, secret key, data directory, first admin."""

import pytest
from django.conf import settings
from django.contrib.auth.models import User

from hrgc_site.bootstrap import ensure_admin
from hrgc_site.database import database_settings
from hrgc_site.settings import secret_key


def test_database_url_must_be_postgres(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "sqlite:///db.sqlite3")
    with pytest.raises(RuntimeError, match="PostgreSQL"):
        database_settings(tmp_path)


def test_database_url_is_used_and_test_processes_can_rename_the_database(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgres://hrgc:secret@db.example:5433/pipeline")
    config = database_settings(tmp_path)
    assert (config["HOST"], config["PORT"], config["NAME"], config["USER"]) == ("db.example", 5433, "pipeline", "hrgc")
    monkeypatch.setenv("HRGC_DB_NAME", "test_pipeline")
    assert database_settings(tmp_path)["NAME"] == "test_pipeline"


def test_the_suite_runs_on_postgres():
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def test_secret_key_is_generated_once_and_reused(monkeypatch, tmp_path):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    first = secret_key(tmp_path)
    assert len(first) >= 50
    assert secret_key(tmp_path) == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    assert secret_key(tmp_path) == "from-the-environment"


def test_debug_is_off_by_default():
    assert settings.DEBUG is False


def test_first_admin_takes_the_password_from_the_environment(db, monkeypatch):
    monkeypatch.setenv("HRGC_ADMIN_PASSWORD", "chosen-by-me-1")
    assert ensure_admin() == "chosen-by-me-1"
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.check_password("chosen-by-me-1")
    assert ensure_admin() is None  # never a second one


def test_first_admin_password_is_generated_when_not_given(db, monkeypatch):
    monkeypatch.delenv("HRGC_ADMIN_PASSWORD", raising=False)
    password = ensure_admin()
    assert password and len(password) >= 12
    assert User.objects.get(username="admin").check_password(password)
