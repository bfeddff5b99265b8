"""Settings from environment variables (and an optional TOML settings file), checked at start."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

ENV_PREFIX = "KADASTER_"


class SettingsError(Exception):
    """A setting has a value the service cannot run with; the message says which and why."""


class Settings(BaseModel):
    """Every knob of the service. Each field is read from `KADASTER_<FIELD>` (upper case)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    nats_url: str | None = Field(
        default=None,
        description="External NATS server(s), comma-separated. Unset: start an embedded nats-server.",
    )
    embedded_nats_port: int = Field(
        default=4322, ge=1, le=65535, description="Port of the embedded nats-server."
    )
    data_dir: Path = Field(
        default=Path(".kadaster"), description="Where the embedded server and SQLite keep data."
    )
    database_url: str | None = Field(
        default=None,
        description="sqlite:///path/file.db (default: kadaster.db in the data dir) or postgresql://user@host:port/db",
    )
    readmodel_url: str | None = Field(
        default=None, description="Where read models live (default: beside the event store)."
    )
    http_host: str = Field(default="127.0.0.1", description="Address of the read-only HTTP API.")
    http_port: int = Field(
        default=8321, ge=0, le=65535, description="Port of the read-only HTTP API (0: off)."
    )
    metrics_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Prometheus /metrics port for this process (0: only on the HTTP API).",
    )
    nats_user: str | None = Field(default=None, description="NATS user name of this service.")
    nats_password: str | None = Field(default=None, description="NATS password of this service.")
    nats_creds: Path | None = Field(default=None, description="NATS credentials file of this service.")
    stream_replicas: int = Field(
        default=3, ge=1, le=5, description="Replicas wanted for the streams (capped by the cluster)."
    )
    duplicate_window_seconds: float = Field(
        default=120.0, gt=0, description="JetStream duplicate window of the streams."
    )
    jetstream_sync: Literal["always", "default"] = Field(
        default="always", description="Embedded server: fsync every JetStream write (always) or every 2 min."
    )
    ack_wait_seconds: float = Field(
        default=15.0, gt=0, description="How long JetStream waits for an ack before redelivering a command."
    )
    ingest_batch: int = Field(
        default=256, ge=1, le=10_000, description="Messages taken from the stream per batch."
    )
    ledger_key: Path | None = Field(
        default=None,
        description="Ed25519 private key (PEM) signing ledger checkpoints (default: made in the data dir).",
    )
    ledger_checkpoint_every: int = Field(
        default=1000, ge=1, le=1_000_000, description="Events between two signed ledger checkpoints."
    )
    ledger_interval_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How often the relay role hashes new events into a signed, published checkpoint "
        "(the longest a recorded event waits to be sealed while the service runs, plus one pass).",
    )
    credentials_url: str | None = Field(
        default=None,
        description="Where local accounts and API token hashes live (default: kadaster.credentials.db "
        "in the data dir, or the event store's PostgreSQL database).",
    )
    session_secret: str | None = Field(
        default=None,
        description="Key signing the web sessions' cookies (default: made once in the data dir).",
    )
    session_idle_minutes: float = Field(default=30.0, gt=0, description="A web session ends after this idle.")
    session_hours: float = Field(
        default=12.0, gt=0, description="A web session ends this long after sign-in."
    )
    secure_cookies: bool = Field(
        default=False, description="Send the session cookie over HTTPS only (set behind a TLS proxy)."
    )
    public_url: str | None = Field(
        default=None,
        description="The web application's address as browsers see it (default: http://<host>:<port>); "
        "OpenID Connect redirects to <public_url>/auth/callback.",
    )
    oidc_issuer: str | None = Field(
        default=None, description="OpenID Connect provider (issuer URL); unset: local accounts sign in."
    )
    oidc_client_id: str | None = Field(default=None, description="This register's client id at the provider.")
    oidc_client_secret: str | None = Field(default=None, description="Its client secret at the provider.")
    signin_attempts: int = Field(
        default=5, ge=1, description="Failed sign-ins per account, and per address, before a pause."
    )
    signin_pause_seconds: float = Field(
        default=60.0, gt=0, description="How long sign-in stays closed to an account or address after that."
    )
    http_commands_per_minute: float = Field(
        default=60.0, gt=0, description="Commands one party may send over HTTP per minute (bursts: x5)."
    )
    http_queries_per_second: float = Field(
        default=20.0, gt=0, description="Queries one party may ask over HTTP per second (bursts: x5)."
    )
    expensive_queries_per_party: int = Field(
        default=2,
        ge=1,
        description="As-of queries, exports and long histories one party may run at once (others: 429).",
    )
    expensive_queries_total: int = Field(
        default=2,
        ge=1,
        description="Such queries running at once for all parties together (one per core leaves "
        "ordinary questions room).",
    )
    serve_mode: Literal["processes", "single"] = Field(
        default="processes",
        description="serve: every role group in its own process under a supervisor, or all in one process.",
    )
    restart_limit: int = Field(
        default=5,
        ge=0,
        le=1000,
        description="serve: restarts of one process within the window before it gives up.",
    )
    restart_window_seconds: float = Field(
        default=60.0, gt=0, description="serve: the window over which restarts are counted."
    )
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="auto: console on a terminal."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(default="info")

    @field_validator("database_url", "readmodel_url", "credentials_url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        if value is None or value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            return value.replace("postgres://", "postgresql://", 1) if value else value
        raise ValueError("must start with sqlite:/// or postgresql://")

    @property
    def event_store_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'kadaster.db').resolve()}"

    @property
    def read_model_url(self) -> str:
        if self.readmodel_url:
            return self.readmodel_url
        store = self.event_store_url
        if store.startswith("sqlite:///"):
            path = Path(store.removeprefix("sqlite:///"))
            return f"sqlite:///{path.with_name(path.stem + '.readmodels' + path.suffix)}"
        return store

    @property
    def credentials_database_url(self) -> str:
        if self.credentials_url:
            return self.credentials_url
        store = self.event_store_url
        if store.startswith("sqlite:///"):
            path = Path(store.removeprefix("sqlite:///"))
            return f"sqlite:///{path.with_name(path.stem + '.credentials' + path.suffix)}"
        return store

    @property
    def embedded(self) -> bool:
        return self.nats_url is None


def load_settings(environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Reads `KADASTER_SETTINGS_FILE` (TOML) if set, then `KADASTER_*` variables, then overrides."""
    environ = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    settings_file = environ.get(f"{ENV_PREFIX}SETTINGS_FILE")
    if settings_file:
        try:
            values.update(tomllib.loads(Path(settings_file).read_text()))
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise SettingsError(f"{ENV_PREFIX}SETTINGS_FILE={settings_file}: {error}") from None
    for name in Settings.model_fields:
        raw = environ.get(f"{ENV_PREFIX}{name.upper()}")
        if raw not in (None, ""):
            values[name] = raw
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings.model_validate(values)
    except ValidationError as error:
        problems = []
        for item in error.errors(include_url=False):
            name = str(item["loc"][0]) if item["loc"] else "?"
            variable = f"{ENV_PREFIX}{name.upper()}"
            problems.append(f"{variable}={values.get(name)!r}: {item['msg']}")
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(problems)) from None


def describe_settings() -> str:
    """Help text listing every variable with its default and meaning."""
    lines = []
    for name, field in Settings.model_fields.items():
        default = field.default if field.default is not None else "(unset)"
        lines.append(f"  {ENV_PREFIX}{name.upper():<28} {field.description or ''} [default: {default}]")
    return "\n".join(lines)
