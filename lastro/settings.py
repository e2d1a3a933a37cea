"""The one settings class, read from the environment and `.env`.

Variable names are the plain ones small teams already use (`DATABASE_URL`, `LOG_LEVEL`, `WORKERS`, ...).
`get_settings()` builds it; nothing here runs at import time. In production, unsafe values are refused
with one message per problem that names the variable and the fix.
"""

from __future__ import annotations

import ipaddress
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, TypeVar, overload

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from lastro.errors import ConfigurationError, UnsafeProductionSettings, one_line

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

__all__ = ["Settings", "get_settings", "is_sqlite_url", "load_settings", "parse_rates"]

MIN_SECRET_KEY_LENGTH = 32
# Fragments of the values guides and templates ship as SECRET_KEY, compared without case, `-`, `_`, `.` or
# spaces. Each is long enough that a random key holds one with a negligible chance.
PLACEHOLDER_FRAGMENTS = (
    "replace",
    "changeme",
    "changethis",
    "changeit",
    "yoursecret",
    "mysecret",
    "supersecret",
    "topsecret",
    "secretkey",
    "default",
    "example",
    "placeholder",
    "insecure",
    "password",
    "notsecret",
)
# A random key of 32 characters or more has far more distinct characters than this.
MIN_DISTINCT_KEY_CHARACTERS = 8
GENERATE_KEY = "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
DEFAULT_DATABASE_URL = "sqlite:///./var/lastro.db"

LogLevel = Literal["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"]


class Settings(BaseSettings):
    """Everything a lastro service reads from its environment."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        frozen=True,
    )

    # Production unless told otherwise: a deploy that forgets ENVIRONMENT still refuses unsafe values.
    ENVIRONMENT: Literal["development", "production"] = "production"
    DEBUG: bool = False
    SERVICE_NAME: str = "lastro"
    SERVICE_VERSION: str = "0.0.0"

    LOG_LEVEL: LogLevel = "INFO"
    LOG_FORMAT: Literal["json", "console"] | None = Field(
        default=None, description="json or console; defaults to console in development, json in production"
    )

    # Tracing (OpenTelemetry, the `tracing` extra). The OTLP exporter reads the standard OTEL_EXPORTER_OTLP_*
    # variables (endpoint, headers, timeout) from the environment itself.
    TRACING: Literal["off", "otlp", "console"] = Field(
        default="off",
        description="off; otlp (to OTEL_EXPORTER_OTLP_ENDPOINT); console (one JSON span a line on stderr)",
    )
    TRACING_SAMPLE_RATIO: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description="share of new traces recorded; a caller's traceparent decides for its own trace",
    )

    DATABASE_URL: str = DEFAULT_DATABASE_URL
    REDIS_URL: str | None = None
    REDIS_SOCKET_TIMEOUT: float = Field(
        default=0.5, gt=0, description="seconds a Redis call may take before lastro gives up on it"
    )
    INSTANCES: int = Field(
        default=1,
        ge=1,
        description="`lastro serve` instances (machines) serving this service; more than 1 needs REDIS_URL",
    )

    MIGRATIONS_DIR: Path = Field(default=Path("migrations"), description="Alembic scripts directory")

    # Connection pool (PostgreSQL); unset sizes are derived from the worker count.
    DB_POOL_SIZE: int | None = Field(default=None, ge=1, description="connections kept per worker")
    DB_MAX_OVERFLOW: int | None = Field(default=None, ge=0, description="extra connections under load")
    DB_POOL_TIMEOUT: float = Field(default=5.0, gt=0, description="seconds to wait for a free connection")
    DB_POOL_RECYCLE: float = Field(default=1800.0, gt=0, description="seconds before a connection is renewed")
    DB_POOL_PRE_PING: bool = True
    DB_STATEMENT_TIMEOUT: float = Field(default=15.0, ge=0, description="seconds per statement; 0 = none")
    DB_CONNECT_TIMEOUT: float = Field(default=5.0, gt=0)
    # Retry of a whole unit of work on a transient error, and the circuit breaker in front of the database.
    DB_RETRY_ATTEMPTS: int = Field(default=5, ge=1)
    DB_RETRY_DEADLINE: float = Field(
        default=5.0, gt=0, description="seconds a unit of work may take retrying"
    )
    DB_BREAKER_THRESHOLD: int = Field(default=3, ge=1, description="failures in a row that open the breaker")
    DB_WATCH_INTERVAL: float = Field(default=1.0, gt=0, description="seconds between database probes")
    DB_BREAKER_RESET: float = Field(default=2.0, gt=0, description="seconds open before a trial call")
    # SQLite: pragmas over lastro's defaults, as JSON, e.g. SQLITE_PRAGMAS='{"cache_size": -64000}'.
    SQLITE_PRAGMAS: dict[str, str | int] = Field(default_factory=dict)
    SQLITE_SYNCHRONOUS: Literal["NORMAL", "FULL"] = Field(
        default="NORMAL",
        description="NORMAL survives a process crash; FULL also an OS crash or a power loss",
    )
    SQLITE_WAL_MAX_BYTES: int = Field(
        default=64 * 1024 * 1024, ge=0, description="WAL size that starts a truncating checkpoint; 0 = never"
    )
    DISK_MIN_FREE_BYTES: int = Field(
        default=64 * 1024 * 1024,
        ge=0,
        description="free bytes on the database's volume below which ready answers 503; 0 = never",
    )
    SQLITE_WRITE_LOCK: Literal["auto", "flock", "portalocker", "off"] = Field(
        default="auto",
        description="how the workers' writers take turns on a lock file: auto is flock on Linux and macOS, "
        "portalocker (LockFileEx) on Windows",
    )
    SQLITE_ALLOW_UNSAFE_VERSION: bool = Field(
        default=False, description="run several workers on a SQLite with the WAL-reset bug anyway"
    )

    WORKERS: int | Literal["auto"] = "auto"
    CONTROL_DIR: Path | None = Field(
        default=None,
        description="where `lastro drain` and `lastro reload` reach the running service; unset: beside "
        "the SQLite database (<database>-lastro-control), else var/lastro-control",
    )
    WORKER_START_METHOD: Literal["auto", "spawn"] = Field(
        default="auto",
        description="auto forks the workers on Linux and spawns them elsewhere; spawn spawns them everywhere",
    )
    BIND: str = "127.0.0.1:8000"
    TIMEOUT: float = Field(default=30.0, gt=0, description="seconds a worker may not answer before replaced")
    KEEPALIVE: float = Field(default=5.0, ge=0, description="seconds an idle keep-alive connection is kept")
    GRACEFUL_TIMEOUT: float = Field(default=30.0, ge=0, description="seconds to finish in-flight requests")
    MAX_REQUESTS: int = Field(default=0, ge=0, description="recycle a worker after this many; 0 = never")
    MAX_REQUESTS_JITTER: int = Field(default=0, ge=0)
    MAX_IN_FLIGHT: int = Field(default=256, ge=0, description="requests in flight per worker; 0 = no cap")
    MAX_LOOP_LAG: float = Field(
        default=0.5, ge=0, description="seconds the event loop may lag before requests are shed; 0 = never"
    )
    MAX_CONNECTIONS: int = Field(default=2048, ge=1, description="open connections per worker")
    HEADER_TIMEOUT: float = Field(
        default=20.0, gt=0, description="seconds a connection may take to send a request's headers"
    )
    BODY_TIMEOUT: float = Field(
        default=20.0, gt=0, description="seconds a request body may take, extended by BODY_MIN_RATE"
    )
    BODY_MIN_RATE: int = Field(
        default=500, ge=0, description="bytes a second a slow body must keep up: each adds 1/rate s"
    )
    MAX_BODY_BYTES: int = Field(default=10 * 1024 * 1024, ge=0, description="largest request body; 0 = any")
    HEALTH_CHECK_TIMEOUT: float = Field(default=2.0, gt=0)

    SECRET_KEY: SecretStr | None = None

    # Rate limits: `N/second|minute|hour|day`, several joined by `;`, or `off`.
    RATE_LIMIT_DEFAULT: str = Field(
        default="600/minute", description="per client IP, or per user once authenticated, on every route"
    )
    RATE_LIMIT_LOGIN: str = Field(default="20/minute", description="per client IP and per username on login")
    TRUSTED_PROXIES: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="addresses or networks whose X-Forwarded-For is believed"
    )

    # The HTTP edge.
    ALLOWED_HOSTS: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["*"],
        description="Host header values served, e.g. api.example.com,*.example.com",
    )
    CORS_ORIGINS: Annotated[list[str], NoDecode] = Field(default_factory=list)
    CORS_ALLOW_CREDENTIALS: bool = False
    HSTS_SECONDS: int = Field(
        default=31_536_000, ge=0, description="Strict-Transport-Security max-age over https; 0 = not sent"
    )
    REFERRER_POLICY: str = "no-referrer"
    REQUEST_TIMEOUT: float = Field(
        default=30.0, ge=0, description="seconds a handler may run before the client gets 504; 0 = none"
    )
    MAX_MULTIPART_PARTS: int = Field(
        default=100, ge=1, description="fields other than files in one form body (multipart or urlencoded)"
    )
    MAX_MULTIPART_FILES: int = Field(default=10, ge=0, description="files in one multipart body")
    MAX_PAGE_SIZE: int = Field(default=100, ge=1, description="items a list route returns at most")

    # What production exposes.
    DOCS_ENABLED: bool | None = Field(
        default=None, description="/docs and /openapi.json; default: on in development, off in production"
    )
    HEALTH_TOKEN: SecretStr | None = Field(
        default=None, description="bearer token that opens /health detail from any address"
    )
    HEALTH_NETWORKS: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["127.0.0.1/8", "::1/128"],
        description="networks that see /health detail without HEALTH_TOKEN",
    )

    # Metrics and the resource monitor.
    METRICS_ENABLED: bool = Field(default=True, description="GET /metrics (Prometheus text, every worker)")
    METRICS_TOKEN: SecretStr | None = Field(
        default=None, description="bearer token that opens /metrics from any address"
    )
    METRICS_NETWORKS: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["127.0.0.1/8", "::1/128"],
        description="networks that scrape /metrics without METRICS_TOKEN",
    )
    MONITOR_INTERVAL: float = Field(
        default=2.0, gt=0, description="seconds between two samples of each worker's resources"
    )
    MAX_WORKER_RSS_MB: int = Field(
        default=0, ge=0, description="a worker past this resident memory is replaced gracefully; 0: never"
    )
    SHARED_MEMORY_DIR: Path | None = Field(
        default=None,
        description="where the workers' shared files live (rate-limit table, metrics); unset: /dev/shm",
    )
    SLOW_REQUEST_SECONDS: float = Field(
        default=1.0, description="requests slower than this log a warning (route, duration, id); 0 = never"
    )

    # The live dashboard.
    DASHBOARD_ENABLED: bool = Field(
        default=True,
        description="GET /admin/dashboard and its JSON, for the readers of /metrics; needs METRICS_ENABLED",
    )

    # Coordination across workers and machines: broadcast and jobs (lastro.coordination).
    EVENTS_RETENTION: float = Field(
        default=3600.0, gt=0, description="seconds a published event stays replayable with `since`"
    )
    EVENTS_REPLAY_MAX: int = Field(
        default=1000, ge=1, description="most events one subscriber may catch up on with `since`"
    )
    EVENTS_QUEUE_SIZE: int = Field(
        default=256, ge=1, description="events waiting for a subscriber before it is dropped as too slow"
    )
    EVENTS_POLL_INTERVAL: float = Field(
        default=0.01,
        gt=0,
        le=1,
        description=(
            "seconds between two looks for new events while they come: SQLite's at its file (0.1 s when "
            "idle), PostgreSQL's at the table after notifications"
        ),
    )
    JOB_RUNS_RETENTION: float = Field(
        default=7 * 86400.0, gt=0, description="seconds a periodic job's run stays recorded"
    )

    # Backups (lastro.backup): `lastro backup`, and the periodic job `lastro-backup` when scheduled.
    BACKUP_DIR: Path = Field(default=Path("backups"), description="where backups are written and pruned")
    BACKUP_EVERY: float | None = Field(
        default=None, gt=0, description="seconds between two scheduled backups; unset: no schedule"
    )
    BACKUP_CRON: str | None = Field(
        default=None, description="when scheduled backups run, a cron expression in UTC, e.g. 0 3 * * *"
    )
    BACKUP_KEEP: int = Field(default=7, ge=1, description="backups kept; older ones beyond it are removed")
    BACKUP_MAX_AGE_DAYS: float = Field(
        default=7, gt=0, description="days a backup is kept (the newest good one always is)"
    )
    BACKUP_PATHS: Annotated[list[Path], NoDecode] = Field(
        default_factory=list, description="directories copied into each backup, e.g. var/images"
    )

    @field_validator("SLOW_REQUEST_SECONDS", mode="before")
    @classmethod
    def _check_slow_request_seconds(cls, value: object) -> float:
        try:
            seconds = float(str(value))
        except (TypeError, ValueError):
            seconds = math.nan
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(
                "SLOW_REQUEST_SECONDS must be a number of seconds, e.g. 1.5, or 0 to log no slow request "
                f"(got {value!r})"
            )
        return seconds

    @field_validator(
        "BACKUP_PATHS",
        "CORS_ORIGINS",
        "TRUSTED_PROXIES",
        "ALLOWED_HOSTS",
        "HEALTH_NETWORKS",
        "METRICS_NETWORKS",
        mode="before",
    )
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("TRUSTED_PROXIES", "HEALTH_NETWORKS", "METRICS_NETWORKS")
    @classmethod
    def _check_networks(cls, value: list[str], info: ValidationInfo) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"{info.field_name} must be IP addresses or networks separated by commas, "
                    f"e.g. 10.0.0.0/8,127.0.0.1 (got {item!r})"
                ) from None
        return value

    @field_validator("BACKUP_PATHS", mode="before")
    @classmethod
    def _split_paths(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("BACKUP_CRON")
    @classmethod
    def _check_backup_cron(cls, value: str | None) -> str | None:
        if value is not None and len(value.split()) != 5:
            raise ValueError(
                "BACKUP_CRON must be a cron expression of 5 fields in UTC (minute hour day month weekday), "
                f"e.g. 0 3 * * * (got {value!r})"
            )
        return value

    @field_validator("RATE_LIMIT_DEFAULT", "RATE_LIMIT_LOGIN")
    @classmethod
    def _check_rates(cls, value: str, info: ValidationInfo) -> str:
        parse_rates(value, info.field_name or "RATE_LIMIT")
        return value

    @field_validator("WORKERS", mode="before")
    @classmethod
    def _check_workers(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
        try:
            count = int(str(value))
        except ValueError:
            raise ValueError("WORKERS must be a positive integer or 'auto'") from None
        if count < 1:
            raise ValueError("WORKERS must be a positive integer or 'auto'")
        return count

    @field_validator("LOG_LEVEL", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("BIND")
    @classmethod
    def _check_bind(cls, value: str) -> str:
        split_bind(value)
        return value

    @property
    def is_production(self) -> bool:
        return self.ENVIRONMENT == "production"

    @property
    def docs_enabled(self) -> bool:
        return self.DOCS_ENABLED if self.DOCS_ENABLED is not None else not self.is_production

    @property
    def log_format(self) -> Literal["json", "console"]:
        if self.LOG_FORMAT is not None:
            return self.LOG_FORMAT
        return "json" if self.is_production else "console"

    @property
    def host(self) -> str:
        return split_bind(self.BIND)[0]

    @property
    def port(self) -> int:
        return split_bind(self.BIND)[1]

    def problems(self) -> list[str]:
        """Every refused value, one line each naming the setting and the fix: `unsafe_problems()` in every
        environment, then `production_problems()` in production."""
        found = self.unsafe_problems()
        if self.is_production:
            found += self.production_problems()
        return found

    def unsafe_problems(self) -> list[str]:
        """Values refused in every environment; a subclass adds its own:
        `[*super().unsafe_problems(), ...]`."""
        problems = []
        if self.BACKUP_EVERY is not None and self.BACKUP_CRON is not None:
            problems.append(
                "BACKUP_EVERY and BACKUP_CRON are both set: a backup schedule is one or the other, "
                "e.g. BACKUP_EVERY=86400 or BACKUP_CRON='0 3 * * *'"
            )
        if self.CORS_ALLOW_CREDENTIALS and any("*" in origin for origin in self.CORS_ORIGINS):
            # Starlette answers a credentialed request to `*` with the caller's own origin: any site could
            # then act with the user's cookies.
            problems.append(
                "CORS_ORIGINS=* with CORS_ALLOW_CREDENTIALS=true lets any site send requests with the user's "
                "cookies: list the allowed origins, e.g. CORS_ORIGINS=https://app.example.com, "
                "or set CORS_ALLOW_CREDENTIALS=false"
            )
        return problems

    def production_problems(self) -> list[str]:
        """Values refused in production (only asked there). A subclass adds its own:
        `[*super().production_problems(), ...]`."""
        problems = []
        if self.DEBUG:
            problems.append("DEBUG=true is not allowed in production: set DEBUG=false")
        key = self.SECRET_KEY.get_secret_value() if self.SECRET_KEY else ""
        key_problem = secret_key_problem(key)
        if key_problem:
            problems.append(
                f"SECRET_KEY {key_problem} in production: set SECRET_KEY to the output of {GENERATE_KEY}"
            )
        if any("*" in origin for origin in self.CORS_ORIGINS) and not self.CORS_ALLOW_CREDENTIALS:
            problems.append(
                "CORS_ORIGINS must not contain a wildcard in production: "
                "list the allowed origins, e.g. CORS_ORIGINS=https://app.example.com"
            )
        for name, token in (("HEALTH_TOKEN", self.HEALTH_TOKEN), ("METRICS_TOKEN", self.METRICS_TOKEN)):
            token_problem = secret_key_problem(token.get_secret_value()) if token else None
            if token_problem:  # /health and /metrics are not rate limited: a guessable token would open them
                problems.append(
                    f"{name} {token_problem} in production: set {name} to the output of {GENERATE_KEY}"
                )
        if self.INSTANCES > 1 and not self.REDIS_URL:
            problems.append(
                f"INSTANCES={self.INSTANCES} shares rate limits and caches only through Redis, and REDIS_URL "
                "is not set: set REDIS_URL=redis://HOST:6379/0, or INSTANCES=1"
            )
        return problems

    def check_production(self) -> None:
        """Raise `UnsafeProductionSettings` (in production) or `ConfigurationError` naming every refused
        value at once."""
        problems = self.problems()
        if problems:
            error = UnsafeProductionSettings if self.is_production else ConfigurationError
            raise error("; ".join(problems))


def secret_key_problem(key: str) -> str | None:
    """What makes `key` unfit to sign with in production (too short, a known placeholder, too few distinct
    characters), or None."""
    if len(key) < MIN_SECRET_KEY_LENGTH:
        return f"must be at least {MIN_SECRET_KEY_LENGTH} characters"
    folded = re.sub(r"[-_.\s]", "", key.lower())
    for fragment in PLACEHOLDER_FRAGMENTS:
        if fragment in folded:
            return f"is a placeholder (it contains {fragment!r}), not a key"
    if len(set(key)) < MIN_DISTINCT_KEY_CHARACTERS:
        return f"has fewer than {MIN_DISTINCT_KEY_CHARACTERS} distinct characters, not a random key"
    return None


_RATE = re.compile(r"\s*(\d+)\s*(?:/|per)\s*(\d*)\s*(second|minute|hour|day)s?\s*", re.IGNORECASE)
_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
RATES_OFF = ("", "off", "none", "0")


def parse_rates(text: str, setting: str = "RATE_LIMIT") -> list[tuple[int, int]]:
    """`"600/minute;20/second"` as `[(600, 60), (20, 1)]` (amount, seconds); `off` is `[]`.

    Raises ValueError naming `setting` and the expected form.
    """
    if text.strip().lower() in RATES_OFF:
        return []
    rates = []
    for part in text.split(";"):
        found = _RATE.fullmatch(part)
        amount = int(found.group(1)) if found else 0
        if not found or amount < 1:
            raise ValueError(
                f"{setting} must be N/second, N/minute, N/hour or N/day (several joined by ';'), "
                f"or off; e.g. 600/minute (got {text!r})"
            )
        multiple = int(found.group(2) or 1)
        rates.append((amount, multiple * _PERIODS[found.group(3).lower()]))
    return rates


def split_bind(bind: str) -> tuple[str, int]:
    """`HOST:PORT` (or `[IPV6]:PORT`) into its parts; raises ValueError naming BIND."""
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(
            f"BIND must be HOST:PORT, e.g. 127.0.0.1:8000; port 0 picks a free one (got {bind!r})"
        )
    return host.strip("[]"), int(port)


def is_sqlite_url(url: str | URL) -> bool:
    """Whether a database URL names SQLite, with any driver: `sqlite://...`, `sqlite+pysqlite://...`.

    The backend is what precedes `+` in the scheme, as SQLAlchemy's `make_url(url).get_backend_name()` reads
    it; read here by hand, so that the settings do not import SQLAlchemy.
    """
    scheme, sep, _ = str(url).partition("://")
    return bool(sep) and scheme.partition("+")[0] == "sqlite"


SettingsT = TypeVar("SettingsT", bound=Settings)


@overload
def get_settings(**overrides: object) -> Settings: ...
@overload
def get_settings(cls: type[SettingsT], /, **overrides: object) -> SettingsT: ...
def get_settings(cls: type[Settings] = Settings, /, **overrides: object) -> Settings:
    """Build the settings (or an application's subclass of them) from the environment, `.env` and
    `overrides`; refuse unsafe values."""
    settings = load_settings(cls, **overrides)
    settings.check_production()
    return settings


@overload
def load_settings(**overrides: object) -> Settings: ...
@overload
def load_settings(cls: type[SettingsT], /, **overrides: object) -> SettingsT: ...
def load_settings(cls: type[Settings] = Settings, /, **overrides: object) -> Settings:
    """`get_settings()` without the refusals of unsafe values, for a command that serves nothing and signs
    nothing (a migration, creating a user); malformed values are still refused."""
    try:
        return cls(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigurationError(_describe(exc)) from None
    except SettingsError as exc:  # a value that should be JSON (SQLITE_PRAGMAS) is not
        raise ConfigurationError(_describe_unparsed(exc)) from None


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        name = ".".join(str(loc) for loc in error["loc"]) or "settings"
        message = error["msg"].removeprefix("Value error, ")
        # Messages of lastro's own validators already name the variable and the value: say each once.
        described = message if message.startswith(f"{name} ") else f"{name}: {message}"
        # A check of the whole settings would quote every value, secrets included: quote fields only.
        if error["loc"] and "(got " not in message:
            described += f" (got {error.get('input')!r})"
        parts.append(described)
    return "; ".join(parts)


def _describe_unparsed(exc: SettingsError) -> str:
    found = re.search(r'field "([^"]+)"', str(exc))
    name = found.group(1) if found else "a setting"
    reason = one_line(exc.__cause__ or exc)
    return f"{name} must be valid JSON ({reason})"
