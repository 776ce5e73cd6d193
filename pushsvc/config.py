"""config.yaml + environment -> frozen dataclasses.

Every key can be overridden from the environment as ``PUSHSVC_<SECTION>_<KEY>``
(``PUSHSVC_POLLER_INTERVAL=0.25``). Lists come from the environment
comma-separated. A bad or missing value raises :class:`ConfigError` naming the
key; secret values never appear in a message.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import urllib.parse
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .proxy import TrustedProxies

ENV_PREFIX = "PUSHSVC_"
SUPPORTED_ALGORITHMS = ("HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512")
SECRET_KEYS = {
    "auth.secret",
    "database.url",
    "broker.url",
}  # values never shown in an error (a URL may hold a password)
BROKER_SCHEMES = ("redis", "rediss")


class ConfigError(Exception):
    """A configuration value is missing or invalid; the message names the key."""


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8082
    shutdown_timeout: float = 5.0
    keepalive_timeout: float = 5.0
    access_log: bool = True
    log_level: str = "INFO"
    static_dir: str = ""
    trusted_proxies: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = ""
    pool_size: int = 10
    connect_timeout: float = 1.0
    query_timeout: float = 1.5
    timezone: str = ""


@dataclass(frozen=True)
class AuthConfig:
    secret: str = ""
    secret_file: str = ""
    public_key_file: str = ""
    private_key_file: str = ""
    algorithm: str = "HS256"
    issuer: str = ""
    audience: str = ""
    leeway: float = 10.0
    jwks_url: str = ""
    jwks_timeout: float = 3.0
    jwks_max_age: float = 300.0
    jwks_min_refetch_interval: float = 30.0


CHANGE_SOURCES = ("poll", "binlog")
# With source binlog, interval is the safety-net full read: this, unless set explicitly.
BINLOG_SAFETY_INTERVAL = 10.0


@dataclass(frozen=True)
class PollerConfig:
    interval: float = 1.0
    backoff_max: float = 10.0
    source: str = "poll"


@dataclass(frozen=True)
class WebSocketConfig:
    allowed_origins: tuple[str, ...] = ()
    auth_timeout: float = 5.0
    heartbeat: float = 20.0
    max_message_bytes: int = 65536
    max_subscriptions: int = 100
    rate_limit: float = 20.0
    rate_burst: int = 40
    max_errors: int = 20
    outbox_messages: int = 64
    max_outbound_bytes: int = 1048576
    slow_close_after: float = 10.0
    history_size: int = 256
    history_bytes: int = 1048576
    history_total_bytes: int = 16777216


@dataclass(frozen=True)
class RestConfig:
    """REST answers from memory (restcache.py; docs/protocol.md, "Answers from memory")."""

    live_ttl: float = 60.0  # seconds a REST request keeps its topic live; 0 = every request reads the database
    freshness_margin: float = 0.5  # seconds a poller read may be late before REST stops answering from it


@dataclass(frozen=True)
class BrokerConfig:
    """Clustering. An empty ``url`` keeps the in-process broker (one instance, the default)."""

    # redis://[:password@]host:port/db or rediss:// (TLS); may hold a password, so it is kept out of repr().
    url: str = field(default="", repr=False)
    namespace: str = "pushsvc"  # prefix of every Redis key and channel: two clusters can share one Redis
    lease_ttl: float = 3.0  # seconds a dead leader keeps the lease; failover takes at most this plus one interval


@dataclass(frozen=True)
class MetricsConfig:
    require_auth: bool = False


@dataclass(frozen=True)
class GuiConfig:
    # Seconds without a sign of life (vma_last_poll_at, else updated_at) before the GUI marks a running job stalled.
    stall_after_s: float = 120.0


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    poller: PollerConfig = field(default_factory=PollerConfig)
    websocket: WebSocketConfig = field(default_factory=WebSocketConfig)
    rest: RestConfig = field(default_factory=RestConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    broker: BrokerConfig = field(default_factory=BrokerConfig)
    gui: GuiConfig = field(default_factory=GuiConfig)

    def replace(self, section: str, **values: Any) -> Config:
        """A copy with some keys of one section changed (tests, --demo)."""
        updated = dataclasses.replace(getattr(self, section), **values)
        return dataclasses.replace(self, **{section: updated})


def data_dir() -> Path:
    """Where pushsvc keeps its own files (embedded database, generated secret)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "pushsvc"


def default_database_url() -> str:
    """The embedded SQLite file used when ``database.url`` is empty."""
    return f"sqlite://{data_dir() / 'pushsvc.db'}"


def load_config(path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read the YAML file (if any), apply environment overrides, validate."""
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        try:
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {describe_yaml_error(exc, text)}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"config file {path} must hold a mapping of sections")
    return build_config(raw, environ)


_YAML_KEY_LINE = re.compile(r"( *)([A-Za-z_][A-Za-z0-9_]*)[ \t]*:(?:[ \t]|$)")
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_YAML_INDICATORS = set(",[]{}:-?#&*!|>%@`")


def describe_yaml_error(exc: yaml.YAMLError, text: str) -> str:
    """Where a YAML error is and what kind it is, quoting nothing from the file.

    PyYAML's own message prints the offending line, which may be
    ``secret: "...``; here the file's text appears only as a known key name
    (``auth.secret``), and quoted fragments in PyYAML's wording become ``'…'``.
    """
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return type(exc).__name__
    problem, context = exc.problem_mark, exc.context_mark
    mark = context if context is not None and context.line <= problem.line else problem
    where = f"line {mark.line + 1}, column {mark.column + 1}"
    key = _known_key_at(text, mark.line)
    if key:
        where += f" ({key})"
    what = ", ".join(_unquote(part) for part in (exc.context, exc.problem) if part)
    if mark is not problem:
        what += f" (at line {problem.line + 1})"
    return f"{where}: {what or type(exc).__name__}"


def _unquote(message: str) -> str:
    def keep(match: re.Match[str]) -> str:
        inner = match.group(0)[1:-1]
        token = inner.startswith("<") and inner.endswith(">") and inner[1:-1].replace(" ", "").isalpha()
        return match.group(0) if token or inner in _YAML_INDICATORS else "'…'"

    return _QUOTED.sub(keep, message)


def _known_key_at(text: str, line: int) -> str:
    """The configuration key (``section`` or ``section.key``) a YAML line belongs to, if it is a known one."""
    stack: list[tuple[int, str]] = []
    for raw in text.splitlines()[: line + 1]:
        match = _YAML_KEY_LINE.match(raw)
        if match is None:
            continue
        indent = len(match.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match.group(2)))
    dotted = ".".join(name for _, name in stack)
    return dotted if dotted in _known_keys() else ""


def _known_keys() -> set[str]:
    keys = set()
    defaults = Config()
    for section in dataclasses.fields(defaults):
        keys.add(section.name)
        keys.update(f"{section.name}.{key.name}" for key in dataclasses.fields(getattr(defaults, section.name)))
    return keys


def build_config(raw: Mapping[str, Any], environ: Mapping[str, str]) -> Config:
    sections: dict[str, Any] = {}
    known_sections = {section.name for section in dataclasses.fields(Config)}
    for name in raw:
        if name not in known_sections:
            raise ConfigError(f"{name}: unknown section (expected one of {', '.join(sorted(known_sections))})")
    for section_field in dataclasses.fields(Config):
        name = section_field.name
        section_cls: Any = section_field.default_factory  # each section's dataclass is its own default factory
        given = raw.get(name) or {}
        if not isinstance(given, dict):
            raise ConfigError(f"{name}: must be a mapping")
        known = {f.name for f in dataclasses.fields(section_cls)}
        for key in given:
            if key not in known:
                raise ConfigError(f"{name}.{key}: unknown key")
        values = {}
        for key_field in dataclasses.fields(section_cls):
            dotted = f"{name}.{key_field.name}"
            env_name = f"{ENV_PREFIX}{name}_{key_field.name}".upper()
            default = getattr(section_cls(), key_field.name)
            if env_name in environ:
                values[key_field.name] = _coerce(dotted, environ[env_name], default, from_env=True)
            elif key_field.name in given and given[key_field.name] is not None:
                values[key_field.name] = _coerce(dotted, given[key_field.name], default, from_env=False)
        for unknown in (k for k in environ if k.startswith(ENV_PREFIX + name.upper() + "_")):
            suffix = unknown[len(ENV_PREFIX + name) + 1 :].lower()
            if suffix not in known:
                raise ConfigError(f"{unknown}: unknown setting ({name}.{suffix})")
        if name == "poller" and values.get("source") == "binlog" and "interval" not in values:
            values["interval"] = BINLOG_SAFETY_INTERVAL
        sections[name] = section_cls(**values)
    config = Config(**sections)
    validate(config)
    return config


def _coerce(key: str, value: Any, default: Any, *, from_env: bool) -> Any:
    shown = "<hidden>" if key in SECRET_KEYS else repr(value)
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if isinstance(default, int):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(str(value).strip()) if isinstance(value, str) else int(value)
        if isinstance(default, float):
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if isinstance(default, tuple):
            if from_env or isinstance(value, str):
                return tuple(item.strip() for item in str(value).split(",") if item.strip())
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                raise ValueError
            return tuple(value)
        if isinstance(value, (dict, list)):
            raise ValueError
        return str(value)
    except ValueError:
        kind = {bool: "a boolean", int: "an integer", float: "a number", tuple: "a list of strings"}
        wanted = kind.get(type(default), "a string")
        raise ConfigError(f"{key}: expected {wanted}, got {shown}") from None


def validate(config: Config) -> None:
    """Raise ConfigError naming the first bad key (run again after command-line overrides)."""
    server, db, auth, poller, ws = config.server, config.database, config.auth, config.poller, config.websocket
    if not 1 <= server.port <= 65535:
        raise ConfigError(f"server.port: must be 1-65535, got {server.port}")
    if not server.host:
        raise ConfigError("server.host: must not be empty")
    _positive("server.shutdown_timeout", server.shutdown_timeout)
    _positive("server.keepalive_timeout", server.keepalive_timeout)
    if server.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"server.log_level: must be DEBUG, INFO, WARNING or ERROR, got {server.log_level!r}")
    try:
        TrustedProxies(server.trusted_proxies)
    except ValueError as exc:
        raise ConfigError(f"server.trusted_proxies: {exc}") from None
    if db.url:
        parse_database_url(db.url)
    if db.timezone:
        try:
            zoneinfo.ZoneInfo(db.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"database.timezone: unknown IANA time zone {db.timezone!r}") from None
    _positive("database.pool_size", db.pool_size)
    _positive("database.connect_timeout", db.connect_timeout)
    _positive("database.query_timeout", db.query_timeout)
    if auth.algorithm not in SUPPORTED_ALGORITHMS:
        raise ConfigError(f"auth.algorithm: must be one of {', '.join(SUPPORTED_ALGORITHMS)}, got {auth.algorithm!r}")
    if auth.jwks_url:
        if auth.algorithm.startswith("HS"):
            raise ConfigError(
                f"auth.algorithm: {auth.algorithm} cannot be used with auth.jwks_url (use RS256 or ES256)"
            )
        if urllib.parse.urlsplit(auth.jwks_url).scheme not in ("http", "https"):
            raise ConfigError("auth.jwks_url: must be an http:// or https:// URL")
        for key in ("jwks_timeout", "jwks_max_age", "jwks_min_refetch_interval"):
            _positive(f"auth.{key}", getattr(auth, key))
    elif not auth.algorithm.startswith("HS") and not auth.public_key_file:
        raise ConfigError(f"auth.public_key_file: required for {auth.algorithm} (or set auth.jwks_url)")
    if auth.leeway < 0:
        raise ConfigError("auth.leeway: must not be negative")
    if poller.interval < 0.1:
        raise ConfigError(f"poller.interval: must be at least 0.1 seconds, got {poller.interval}")
    _positive("poller.backoff_max", poller.backoff_max)
    if poller.source not in CHANGE_SOURCES:
        raise ConfigError(f"poller.source: must be poll or binlog, got {poller.source!r}")
    for key in ("auth_timeout", "heartbeat", "rate_limit", "slow_close_after"):
        _positive(f"websocket.{key}", getattr(ws, key))
    for key in (
        "max_message_bytes",
        "max_subscriptions",
        "rate_burst",
        "max_errors",
        "outbox_messages",
        "max_outbound_bytes",
        "history_size",
        "history_bytes",
        "history_total_bytes",
    ):
        _positive(f"websocket.{key}", getattr(ws, key))
    if config.rest.live_ttl < 0:
        raise ConfigError(f"rest.live_ttl: must not be negative, got {config.rest.live_ttl}")
    _positive("rest.freshness_margin", config.rest.freshness_margin)
    _validate_broker(config.broker)
    if not math.isfinite(config.gui.stall_after_s):
        raise ConfigError(f"gui.stall_after_s: must be a finite number of seconds, got {config.gui.stall_after_s}")
    _positive("gui.stall_after_s", config.gui.stall_after_s)
    for origin in ws.allowed_origins:
        parsed = urllib.parse.urlsplit(origin)
        if origin != "*" and (
            parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.path not in ("", "/")
        ):
            raise ConfigError(f"websocket.allowed_origins: {origin!r} is not an origin like https://host:port")


def _validate_broker(broker: BrokerConfig) -> None:
    if broker.url:
        parsed = urllib.parse.urlsplit(broker.url)
        try:
            parsed.port  # noqa: B018 - raises on a bad port
        except ValueError:
            raise ConfigError(f"broker.url: invalid port in {redact_url(broker.url)}") from None
        if parsed.scheme not in BROKER_SCHEMES or not parsed.hostname:
            shown = redact_url(broker.url)
            raise ConfigError(f"broker.url: expected redis://host:port/db or rediss://..., got {shown}")
        database = parsed.path.lstrip("/")
        if database and not database.isdigit():
            raise ConfigError(f"broker.url: the database must be a number, got {redact_url(broker.url)}")
    if not broker.namespace or not all(ch.isalnum() or ch in "_-.:" for ch in broker.namespace):
        raise ConfigError(f"broker.namespace: letters, digits and _-.: only, got {broker.namespace!r}")
    # The lease is renewed every min(poller.interval, lease_ttl / 3), whatever the interval.
    if broker.lease_ttl < 0.5:
        raise ConfigError(f"broker.lease_ttl: must be at least 0.5 seconds, got {broker.lease_ttl}")


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for logs and messages)."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.password is None:
        return url
    user = parsed.username or ""
    host = parsed.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit(parsed._replace(netloc=f"{user}:***@{host}"))


def _positive(key: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(f"{key}: must be positive, got {value}")


@dataclass(frozen=True)
class DatabaseURL:
    engine: str  # "mysql" or "sqlite"
    host: str = ""
    port: int = 3306
    user: str = ""
    password: str = ""
    database: str = ""
    path: str = ""

    def redacted(self) -> str:
        """The URL as a log may show it: the password replaced by ``***``."""
        if self.engine == "sqlite":
            return f"sqlite://{self.path}"
        user = urllib.parse.quote(self.user, safe="") + (":***" if self.password else "")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"mysql://{user}{'@' if user else ''}{host}:{self.port}/{urllib.parse.quote(self.database, safe='')}"

    def server_args(self) -> dict[str, Any]:
        """``host``, ``port``, ``user``, ``password``: the connect arguments of a MySQL URL."""
        return {"host": self.host, "port": self.port, "user": self.user, "password": self.password}


def parse_database_url(url: str, *, require_database: bool = True) -> DatabaseURL:
    """``mysql://user:pass@host:port/db`` or ``sqlite:///path`` (``sqlite:///:memory:`` too).

    ``require_database=False`` also takes a server URL without a database
    (``mysql://root@127.0.0.1:3306``), as the test and benchmark tools do.
    """
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme in ("mysql", "mariadb"):
        database = urllib.parse.unquote(parsed.path.lstrip("/"))
        if not parsed.hostname or (require_database and not database):
            raise ConfigError("database.url: expected mysql://user:password@host:port/database")
        try:
            port = parsed.port or 3306
        except ValueError:
            raise ConfigError("database.url: invalid port") from None
        return DatabaseURL(
            engine="mysql",
            host=parsed.hostname,
            port=port,
            user=urllib.parse.unquote(parsed.username or ""),
            password=urllib.parse.unquote(parsed.password or ""),
            database=database,
        )
    if parsed.scheme == "sqlite":
        path = url[len("sqlite://") :]
        if path.startswith("/") and not path.startswith("//"):
            path = path[1:] if path[1:] == ":memory:" else path
        if not path:
            raise ConfigError("database.url: expected sqlite:///path/to/file.db")
        return DatabaseURL(engine="sqlite", path=os.path.expanduser(path))
    raise ConfigError("database.url: scheme must be mysql:// or sqlite://")
