"""Django settings, read from the environment with safe defaults."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from hrgc_site.database import database_settings

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("HRGC_DATA_DIR") or BASE_DIR / "var").resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _env_flag(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in ("1", "true", "yes", "on")


def secret_key(data_dir: Path) -> str:
    """SECRET_KEY from the environment, else generated once into the data dir and reused."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    path = data_dir / "secret_key"
    if not path.exists():
        # Written whole to a private file, then linked into place: of processes starting together (two
        # workers on a fresh data dir) one link wins, and no process ever reads a half-written key.
        temp = data_dir / f".secret_key.{os.getpid()}"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
        try:
            os.link(temp, path)
        except FileExistsError:
            pass  # another process linked its key first: everyone uses that one
        finally:
            temp.unlink()
    return path.read_text().strip()


SECRET_KEY = secret_key(DATA_DIR)
DEBUG = _env_flag("DEBUG")
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",
    "django_q",
    "hrgc_site",
    "corpus",
    "training",
    "models_registry",
    "evaluation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "hrgc_site.urls"
WSGI_APPLICATION = "hrgc_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "hrgc_site.roles.role_context",
            ],
        },
    },
]

DATABASES = {"default": database_settings(DATA_DIR)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# A cache every process shares: django-q2 publishes its cluster stats there, the System page reads them.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "hrgc_cache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise expects it even when serving from the finders
# plotly.js comes from the installed `plotly` package, never from a CDN.
STATICFILES_DIRS = [BASE_DIR / "static", ("plotly", Path(__import__("plotly").__file__).parent / "package_data")]
WHITENOISE_USE_FINDERS = True  # serve straight from the finders: no collectstatic step needed

SESSION_COOKIE_HTTPONLY = True
# Serving on a network (see SECURITY.md). Behind a TLS-terminating proxy set HRGC_BEHIND_PROXY=1 (the proxy
# must set X-Forwarded-Proto and X-Forwarded-For itself), HRGC_SECURE_COOKIES=1 and HRGC_HSTS_SECONDS.
HRGC_BEHIND_PROXY = _env_flag("HRGC_BEHIND_PROXY")
if HRGC_BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = _env_flag("HRGC_SECURE_COOKIES")
SECURE_SSL_REDIRECT = _env_flag("HRGC_SSL_REDIRECT")
SECURE_HSTS_SECONDS = int(os.environ.get("HRGC_HSTS_SECONDS", "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_flag("HRGC_HSTS_INCLUDE_SUBDOMAINS")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Login throttling: this many failures for one user name from one address (or from one address for any
# names) within the window lock further attempts out until the window ends.
HRGC_LOGIN_MAX_FAILURES = int(os.environ.get("HRGC_LOGIN_MAX_FAILURES", "5"))
HRGC_LOGIN_MAX_FAILURES_PER_ADDRESS = int(os.environ.get("HRGC_LOGIN_MAX_FAILURES_PER_ADDRESS", "50"))
HRGC_LOGIN_WINDOW_SECONDS = int(os.environ.get("HRGC_LOGIN_WINDOW_SECONDS", "900"))
CSRF_FAILURE_VIEW = "hrgc_site.views.csrf_failure"
X_FRAME_OPTIONS = "DENY"

# django-q2 on its ORM broker (the same Postgres). Training runs for hours: no timeout kill
# (a year), a retry window beyond it so a running task is never handed out again, one attempt,
# failures acknowledged. Our own rows carry progress, cancellation and heartbeats.
_LONG = 365 * 24 * 3600
_Q_COMMON = {
    "timeout": _LONG,
    "retry": _LONG + 3600,
    "max_attempts": 1,
    "ack_failures": True,
    "save_limit": 500,
    "poll": 0.5,
    "catch_up": False,
    # Daemon processes cannot start children (DataLoader workers, tokenizer pools, torchrun).
    "daemonize_workers": False,
}
Q_CLUSTER = {
    "name": "hrgc",
    "orm": "default",
    "workers": int(os.environ.get("HRGC_WORKERS", "2")),
    "recycle": 50,
    **_Q_COMMON,
    # Training gets its own queue so GPU machines take only training (`qcluster --name long`).
    "ALT_CLUSTERS": {"long": {"workers": int(os.environ.get("HRGC_TRAIN_WORKERS", "1")), **_Q_COMMON}},
}
TRAINING_CLUSTER = "long"
# Workers beat every HRGC_HEARTBEAT_SECONDS; one silent for HRGC_HEARTBEAT_DEAD_AFTER is taken for dead.
HRGC_HEARTBEAT_SECONDS = float(os.environ.get("HRGC_HEARTBEAT_SECONDS", "10"))
HRGC_HEARTBEAT_DEAD_AFTER = float(os.environ.get("HRGC_HEARTBEAT_DEAD_AFTER", "90"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "pgserver": {"level": "WARNING"}},
}

# Where the pipeline talks to GitHub; both can be changed on the Corpus settings page too.
GITHUB_API_URL = os.environ.get("GITHUB_API_URL", "https://api.github.com")
GITHUB_TOKEN = os.environ.get("GITHUB_TOKEN", "")
# Git import from the web reads only repositories inside this folder (symbolic links resolved first).
# Put or clone the repositories to import there. The command line (`import_git PATH`) is not limited.
HRGC_IMPORT_ROOT = Path(os.environ.get("HRGC_IMPORT_ROOT") or DATA_DIR / "imports").expanduser().resolve()
# Hosts the GitHub client may reach although they resolve to loopback or private addresses (a GitHub
# Enterprise inside the network, the local GitHub-shaped server). Any other internal address is refused.
HRGC_GITHUB_ALLOWED_HOSTS = [h.strip() for h in os.environ.get("HRGC_GITHUB_ALLOWED_HOSTS", "").split(",") if h.strip()]
# Where clones come from ({GITHUB_GIT_URL}/{owner}/{name}.git). Blank: derived from the API URL
# (https://api.github.com -> https://github.com, https://HOST/api/v3 -> https://HOST, else the API URL).
GITHUB_GIT_URL = os.environ.get("GITHUB_GIT_URL", "")
# "graphql": metadata and discussion from GraphQL, code from git clones (REST when GraphQL is refused);
# "rest": the REST API only.
GITHUB_FETCH_METHOD = os.environ.get("GITHUB_FETCH_METHOD", "graphql")
GITHUB_GRAPHQL_PAGE_SIZE = int(os.environ.get("GITHUB_GRAPHQL_PAGE_SIZE", "50"))
# Workers on one crawl (the job's own worker and helpers it queues; each takes the next repository).
GITHUB_CRAWL_WORKERS = int(os.environ.get("GITHUB_CRAWL_WORKERS", "2"))
