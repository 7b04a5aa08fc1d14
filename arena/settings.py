"""Settings for the arena, read from the environment.

A fresh clone runs with nothing set: SQLite under var/, an embedded Redis started by the supervisor
(`python -m arena.supervisor`), DEBUG off. Production sets DATABASE_URL and REDIS_URL.
"""

import contextlib
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from arena.environment import envbool, envfloat, envint, envlist, envport, envswitch

BASE_DIR = Path(__file__).resolve().parent.parent
# An empty value means the default too: Path("") would be the working directory.
VAR_DIR = Path(os.environ.get("ARENA_VAR_DIR") or BASE_DIR / "var")


# The shortest interval a periodic (beat) task may be given. Celery treats an interval of 0 or less as always
# due, and beat then publishes the task in a tight loop, flooding Redis; under a second is no schedule either.
MIN_BEAT_INTERVAL = 1


def _key(env_name: str, file_name: str, generate) -> str:
    """A key from the environment, else one generated once into var/ (owner-only), never kept in code."""
    if os.environ.get(env_name):
        return os.environ[env_name]
    VAR_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = VAR_DIR / file_name
    if not path.exists():
        # Written whole under a name of its own (mkstemp: owner-only from the first byte), then linked into
        # place. A process starting beside this one finds no key or the whole key: it used to read an empty
        # one (HASH_KEY "" hashes addresses anyone can reverse) between the file's creation and its write, or
        # fail on the file another had just created. Of two generating at once, the first link wins for both.
        key = generate()
        descriptor, temporary = tempfile.mkstemp(dir=VAR_DIR, prefix=f".{file_name}.")
        try:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(key)
            try:
                os.link(temporary, path)
            except FileExistsError:
                pass
            except OSError:  # a filesystem without hard links (vfat, some network mounts): created in place
                _key_file_create(path, key)
        finally:
            os.unlink(temporary)
    key = path.read_text().strip()
    for _ in range(20):  # created in place by another process that has not written it yet (see above)
        if key:
            break
        time.sleep(0.1)
        key = path.read_text().strip()
    if not key:
        raise ImproperlyConfigured(f"{path} is empty: set {env_name}, or put back the key it held (a new one "
                                   "would not read what the old one wrote or hashed)")  # fmt: skip
    return key


def _key_file_create(path: Path, key: str) -> None:
    """Create the key file owner-only and write it, unless another process has just created it."""
    with contextlib.suppress(FileExistsError):
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(key)


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


FERNET_KEY_COMMAND = "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"


def fernet_keys(value: str, *, source: str) -> list[str]:
    """The comma-separated Fernet keys in value, empty items dropped, each checked now: a key Fernet refuses
    (hex from `openssl rand -hex 32`, a token_urlsafe string) would otherwise pass the start and fail every
    read of a stored API key, and with it every battle start. The message never repeats the key."""
    from cryptography.fernet import Fernet

    keys = [key.strip() for key in value.split(",") if key.strip()]
    for number, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError:  # binascii.Error (not base64) is a ValueError too
            raise ImproperlyConfigured(
                f"{source}: key {number} of {len(keys)} is not a Fernet key (32 url-safe base64-encoded bytes); "
                f"generate one with: {FERNET_KEY_COMMAND}"
            ) from None
    if not keys:
        raise ImproperlyConfigured(f"{source} holds no key; generate one with: {FERNET_KEY_COMMAND}")
    return keys


SECRET_KEY = _key("SECRET_KEY", "secret_key", lambda: secrets.token_urlsafe(50))
# Keys the visitor's session and address are hashed with (judge ids, owners, rate limits). A key of its
# own: rotating SECRET_KEY (sessions, CSRF) must not silently re-key exported judge ids.
HASH_KEY = _key("ARENA_HASH_KEY", "hash_key", lambda: secrets.token_urlsafe(50))
# Endpoint API keys are encrypted at rest with this key, kept outside the database. Comma-separated to
# rotate: the first encrypts, every one decrypts.
ENCRYPTION_KEYS = fernet_keys(
    _key("ARENA_ENCRYPTION_KEY", "encryption_key", _fernet_key),
    source="ARENA_ENCRYPTION_KEY" if os.environ.get("ARENA_ENCRYPTION_KEY") else str(VAR_DIR / "encryption_key"),
)
DEBUG = envbool("DEBUG")
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "arena.admin_site.ArenaAdminConfig",  # Django's admin, with failed logins limited per address
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "csp",
    "inference",
    "battles",
    "ratings",
]

# WhiteNoise last, on purpose. Under ASGI a middleware that can run either way runs in the mode of the one
# inside it, and Django's own (MiddlewareMixin) in async mode move every process_request/process_response
# to the sync thread and back: with WhiteNoise (sync only) near the top, an API request made a dozen such
# trips and the web process spent most of an HTTP vote's CPU on them. Innermost, WhiteNoise puts the
# whole stack in sync mode, run in one trip; static files pass the middleware above it, which leaves them be.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
]

ROOT_URLCONF = "arena.urls"
ASGI_APPLICATION = "arena.asgi.application"
WSGI_APPLICATION = None

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
            ],
        },
    },
]


def process_role(argv: list[str]) -> str:
    """What this process is, as PostgreSQL names its connections (pg_stat_activity.application_name), so an
    operator sees which of the arena's processes holds which connections: "arena webserver", "arena celery
    worker", "arena manage migrate"."""
    path = Path(argv[0]) if argv and not argv[0].startswith("-") else Path("python")  # `python -c` gives "-c"
    name = path.parent.name if path.stem == "__main__" else path.stem  # `python -m celery` runs celery/__main__.py
    if name in {"celery", "manage"}:  # the subcommand says which one: worker, beat, migrate...
        name += " " + next((arg for arg in argv[1:] if not arg.startswith("-") and arg != "arena"), "")
    return f"arena {name}".strip()[:63]  # PostgreSQL keeps 63 characters


DATABASES = {"default": dj_database_url.config(default=f"sqlite:///{VAR_DIR / 'arena.sqlite3'}")}
# Threads per web process for database work from async code (arena/db.py); each holds one connection.
DB_THREADS = envint("DB_THREADS", 8, minimum=1)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # psycopg's connection pool: a query borrows a connection and gives it back, no connect per request.
    # Size it to the database threads of one process; PostgreSQL's max_connections must cover
    # processes x DB_POOL_MAX (plus the worker's).
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # Each connection the pool hands out is checked first (psycopg_pool's ConnectionPool.check_connection, an
    # empty query): after a PostgreSQL restart every idle pooled connection is dead, and unchecked each would
    # be handed out once and fail (a lost vote, a 500). Django 5.2 passes that check itself when
    # CONN_HEALTH_CHECKS is on, and refuses a "check" key of our own in the pool options (TypeError).
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("application_name", process_role(sys.argv))
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": 1,
        "max_size": envint("DB_POOL_MAX", DB_THREADS + 2, minimum=1),
        "timeout": 10,
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # One connection per thread, kept open: opening a SQLite file per query is pure overhead.
    DATABASES["default"]["CONN_MAX_AGE"] = None
    # A file (not :memory:) so that the Celery worker and the ASGI server started by tests share it;
    # WAL and a busy timeout let several processes write without "database is locked".
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test_arena.sqlite3")}
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
FORMS_URLFIELD_ASSUME_HTTPS = True

# The supervisor starts an embedded Redis on this port when REDIS_URL is not set.
EMBEDDED_REDIS_PORT = envport("EMBEDDED_REDIS_PORT", 6390)
REDIS_URL = os.environ.get("REDIS_URL", f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0")

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": os.environ.get("CHANNELS_PREFIX", "arena")},
    }
}

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TIME_LIMIT = envint("CELERY_TASK_TIME_LIMIT", 15 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = envint("CELERY_TASK_SOFT_TIME_LIMIT", 14 * 60)
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_QUEUE", "arena")
# Fail fast when the broker is down (the vote is kept and rated by the sweep) instead of hanging a request.
CELERY_BROKER_CONNECTION_TIMEOUT = envfloat("CELERY_BROKER_CONNECTION_TIMEOUT", 2.0)
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
# Votes still unrated after this many seconds are rated by a periodic sweep (every minute).
VOTE_RATING_SWEEP_AGE = envint("VOTE_RATING_SWEEP_AGE", 60, minimum=0)
# A worker run rates at most this many votes (about 5 s of work), then queues a run for the rest behind the
# tasks queued meanwhile (probes, snapshots), so a backlog never holds the worker for long.
VOTE_RATING_CHUNK = envint("VOTE_RATING_CHUNK", 250, minimum=1)
# Recompute the Bradley-Terry leaderboard snapshot this often (seconds).
LEADERBOARD_RECOMPUTE_INTERVAL = envint("LEADERBOARD_RECOMPUTE_INTERVAL", 600, minimum=MIN_BEAT_INTERVAL)
LEADERBOARD_BOOTSTRAP_ROUNDS = envint("LEADERBOARD_BOOTSTRAP_ROUNDS", 1000)
LEADERBOARD_SEED = envint("LEADERBOARD_SEED", 0)
# A category (coding, a language, ...) gets a board of its own from this many votes.
CATEGORY_MIN_VOTES = envint("CATEGORY_MIN_VOTES", 300)
# Every snapshot of the last this many days is kept; older ones thin out to the newest of each day.
SNAPSHOT_KEEP_DAYS = envint("SNAPSHOT_KEEP_DAYS", 7)
# Judges are screened for anomalous votes this often (seconds); an honest judge is flagged with at most this
# probability over all its votes (ratings/engine/anomaly.py).
JUDGE_SCREEN_INTERVAL = envfloat("JUDGE_SCREEN_INTERVAL", 3600.0, minimum=MIN_BEAT_INTERVAL)
JUDGE_SCREEN_ALPHA = envfloat("JUDGE_SCREEN_ALPHA", 0.01)

SESSION_ENGINE = "django.contrib.sessions.backends.db"
# Per process: the leaderboard's cached renderings (keyed by snapshot) and which session keys were issued
# (battles/visitors.py).
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "OPTIONS": {"MAX_ENTRIES": envint("WEB_CACHE_ENTRIES", 50_000)},
    }
}
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = envint("SESSION_COOKIE_AGE", 14 * 24 * 3600)

# HTTPS deployments (behind a TLS proxy): secure cookies, HSTS, and the proxy's scheme header trusted.
SECURE_COOKIES = envbool("SECURE_COOKIES")
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
if SECURE_COOKIES:
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS")
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): only the project's own scripts and styles, no inline script, no
# framing. Plotly draws with inline styles, so styles (never scripts) may be inline.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# Battles
PROMPT_MAX_CHARS = envint("PROMPT_MAX_CHARS", 4000)
BATTLE_MAX_TURNS = envint("BATTLE_MAX_TURNS", 8)
# Budgets per visitor session, and per IP address, in any hour: new battles, and answer pairs (every start,
# continue and regenerate asks both models). Counted atomically in Redis, so they hold across processes.
BATTLES_PER_HOUR = envint("BATTLES_PER_HOUR", 120)
ANSWERS_PER_HOUR = envint("ANSWERS_PER_HOUR", 300)
REGENERATIONS_PER_TURN = envint("REGENERATIONS_PER_TURN", 3)
# New visitor sessions per IP address in any hour (a session is issued when a visitor first starts a battle).
SESSIONS_PER_HOUR = envint("SESSIONS_PER_HOUR", 30)
# WebSockets (battle and leaderboard pages) one address may hold open in each web process; 0 = no cap
# (arena/socket_limit.py). A page holds one; a classroom behind one address holds one each.
SOCKETS_PER_ADDRESS = envint("SOCKETS_PER_ADDRESS", 100, minimum=0)
# Failed admin logins an address may make in 15 minutes before it is refused (arena/admin_site.py).
ADMIN_LOGIN_FAILURES = envint("ADMIN_LOGIN_FAILURES", 10, minimum=1)
# Keys of the state web processes share in Redis (endpoint health, in-flight streams, rate limits).
SHARED_STATE_PREFIX = os.environ.get("SHARED_STATE_PREFIX", "arena")
INFERENCE_CONNECT_TIMEOUT = envfloat("INFERENCE_CONNECT_TIMEOUT", 5.0)
# Longest wait for the next token of an answer (and for the first one); keep-alive comments don't count.
INFERENCE_IDLE_TIMEOUT = envfloat("INFERENCE_IDLE_TIMEOUT", 60.0)
# Longest a whole answer may take.
INFERENCE_ANSWER_DEADLINE = envfloat("INFERENCE_ANSWER_DEADLINE", 180.0)
# Every endpoint's /models is probed this often (seconds) by a beat task; see inference/health.py.
HEALTH_PROBE_INTERVAL = envfloat("HEALTH_PROBE_INTERVAL", 15.0, minimum=MIN_BEAT_INTERVAL)
# Streamed text is sent to the visitor at most this often per turn, both sides in one frame (a side's first
# piece goes at once). 20 frames a second reads as smooth; each frame costs the web process CPU.
STREAM_FRAME_INTERVAL = envfloat("STREAM_FRAME_INTERVAL", 0.05)
# ...and this often while the web process is busy (arena/overload.frame_pacer): fewer, larger frames.
STREAM_FRAME_INTERVAL_BUSY = envfloat("STREAM_FRAME_INTERVAL_BUSY", 0.2)
# A web process running this many seconds behind (its event loop late, or its own part of a turn that
# slow lately) tells new visitors it is busy instead of making them wait; 0 turns this off
# (arena/overload.py).
WEB_MAX_DELAY = envfloat("WEB_MAX_DELAY", 2.0)
# ...or one that has been using more than this much CPU (cores, about the last second): 0 = off.
WEB_MAX_CPU = envfloat("WEB_MAX_CPU", 0.0)

# Behind a reverse proxy: client addresses are read from X-Forwarded-For, but only as written by these
# proxies (addresses or networks). Each proxy appends the address it saw to what the client sent, so
# trusting every sender ("*") would take the client's own first entry: anyone could pick an address,
# and slip past the per-address limits or reach /metrics as 127.0.0.1.
PROXY_HEADERS = envbool("PROXY_HEADERS", False)
FORWARDED_ALLOW_IPS = envlist("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# /metrics (Prometheus): staff, `Authorization: Bearer $METRICS_TOKEN`, or requests from this machine. Behind
# a reverse proxy on the same machine that does not set X-Forwarded-For, every request looks local: set
# METRICS_FROM_LOOPBACK=0 there.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
METRICS_FROM_LOOPBACK = envbool("METRICS_FROM_LOOPBACK", True)

# Local model servers started by `manage.py serve_models` / the supervisor.
LLAMACPP_HOST = os.environ.get("LLAMACPP_HOST", "127.0.0.1")
# Whether this host has a GPU for vLLM: unset, nvidia-smi decides; 0 acts as if none; 1 counts one where
# nvidia-smi is present but lists none (inference/launch.py).
ARENA_GPU = envswitch("ARENA_GPU")
LLAMACPP_BASE_PORT = envport("LLAMACPP_BASE_PORT", 8081)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Serve app and project static files straight from their finders (no collectstatic step needed).
WHITENOISE_USE_FINDERS = True

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").strip().upper()  # "debug" crashed every process at start
if LOG_LEVEL not in LOG_LEVELS:
    raise ImproperlyConfigured(
        f"LOG_LEVEL={os.environ['LOG_LEVEL']!r} is not a log level; use one of {', '.join(LOG_LEVELS)}"
    )
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"httpx": {"level": "WARNING"}, "uvicorn.error": {"level": "WARNING"}},
}
