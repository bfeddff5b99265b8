"""`kadaster nats-config`: NATS users and subject permissions for every party, from a parties file."""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import sys
import tomllib
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from adapters.nats.streams import CMD_STREAM, EVT_STREAM, INGEST_CONSUMER, OUTCOME_STREAM
from domain.identifiers import AUTHORITIES, Source

Role = Literal["ingest", "rpc", "projector", "relay", "api", "admin"]
SERVICE_ROLES: tuple[Role, ...] = ("ingest", "rpc", "projector", "relay", "api")
# The compose file's shape: roles that answer parties' requests get a user that can publish nothing
# but replies, because a requester chooses the reply subject (see ROLE_PERMISSIONS).
DEFAULT_SERVICES: dict[str, list[Role]] = {
    "kadaster": ["ingest", "projector", "relay"],
    "kadaster-responder": ["rpc", "api"],
}
# Operator queries the authorities other than the FOD do not get: the raw log of every sender's commands.
OPERATOR_ONLY_QUERIES = ("commands",)

# For random 256-bit passwords any cost is enough; given ones may be weaker, and nats-server pays this
# cost once per connection.
BCRYPT_COST = 10
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_BCRYPT = re.compile(r"^\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}$")
# Written quoted as they are: nothing that needs escaping, and no `$`, which starts a bcrypt hash.
_PLAIN_PASSWORD = re.compile(r"^[A-Za-z0-9_.~!@#%^&*()+=:,;?/-]{16,128}$")


class PartiesError(Exception):
    """The parties file cannot be turned into a NATS configuration; the message says why."""


class PartiesFile(BaseModel):
    """Who speaks to the register. The same keys in JSON or TOML."""

    model_config = ConfigDict(extra="forbid")

    institutions: list[str] = Field(default_factory=list, description="hospital ids, e.g. H001")
    suppliers: list[str] = Field(default_factory=list, description="supplier ids")
    authorities: list[str] = Field(
        default_factory=lambda: list(AUTHORITIES), description="fod, fanc, riziv, vazg"
    )
    services: dict[str, list[Role]] | list[str] = Field(
        default_factory=lambda: {name: list(roles) for name, roles in DEFAULT_SERVICES.items()},
        description="service user → the roles it runs (a plain list: every role)",
    )
    passwords: dict[str, str] = Field(
        default_factory=dict,
        description="user → password, or its bcrypt hash ($2a$...), instead of a random one",
    )

    @field_validator("institutions", "suppliers")
    @classmethod
    def _party_ids(cls, ids: list[str]) -> list[str]:
        for party in ids:
            if not _NAME.fullmatch(party):
                raise ValueError(f"{party!r} is not an id ([A-Za-z0-9_-], 1 to 64 characters)")
        return _unique(ids)

    @field_validator("authorities")
    @classmethod
    def _known_authorities(cls, names: list[str]) -> list[str]:
        for name in names:
            if name not in AUTHORITIES:
                raise ValueError(f"{name!r} is not one of {', '.join(AUTHORITIES)}")
        return _unique(names)

    def service_roles(self) -> dict[str, tuple[Role, ...]]:
        if isinstance(self.services, list):
            return {name: SERVICE_ROLES for name in _unique(self.services)}
        return {name: tuple(dict.fromkeys(roles)) for name, roles in self.services.items()}


def _unique(values: list[str]) -> list[str]:
    seen = [v for i, v in enumerate(values) if v in values[:i]]
    if seen:
        raise ValueError(f"listed twice: {', '.join(sorted(set(seen)))}")
    return values


@dataclass(frozen=True)
class Permissions:
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    publish_deny: tuple[str, ...] = ()

    def __or__(self, other: Permissions) -> Permissions:
        return Permissions(
            tuple(dict.fromkeys(self.publish + other.publish)),
            tuple(dict.fromkeys(self.subscribe + other.subscribe)),
            tuple(dict.fromkeys(self.publish_deny + other.publish_deny)),
        )

    def as_config(self) -> dict[str, Any]:
        publish: dict[str, list[str]] = {"allow": list(self.publish)}
        if self.publish_deny:
            publish["deny"] = list(self.publish_deny)
        return {"publish": publish, "subscribe": {"allow": list(self.subscribe)}}


@dataclass(frozen=True)
class NatsUser:
    """One NATS user: a party of the contract (`source`) or a user of the service itself (`roles`)."""

    name: str
    permissions: Permissions
    source: str | None = None
    roles: tuple[Role, ...] = ()
    inbox_prefix: str = "_INBOX"
    duty: str | None = None
    """What a user that is neither a party nor a service is for (the auditor)."""


def user_name(source: str) -> str:
    """`hospital/H001` → `hospital-H001`; an authority keeps its name."""
    parsed = Source.parse(source)
    return parsed.kind if parsed.party is None else f"{parsed.kind}-{parsed.party}"


def inbox_prefix(source: str) -> str:
    # Under the service's own `_INBOX.>`, so the service answers every party with one publish
    # permission, while each party may read only its own branch of it.
    return f"_INBOX.{user_name(source)}"


def party_permissions(source: str) -> Permissions:
    parsed = Source.parse(source)
    inbox = f"{inbox_prefix(source)}.>"
    own = Permissions(
        publish=(f"{parsed.command_subject_prefix}.>",),
        # A JetStream publish needs nothing more: its PubAck comes back on the publisher's inbox.
        subscribe=(inbox, parsed.outcome_subject),
    )
    if parsed.kind == "hospital":
        return own | Permissions(
            publish=(f"kadaster.rpc.hospital.{parsed.party}.>", f"kadaster.query.hospital.{parsed.party}.>"),
            subscribe=(),
        )
    if parsed.kind == "supplier":
        # The contract gives suppliers no queries of their own; the client asks `outcome` (with its
        # source) when an outcome went by before it listened.
        return own | Permissions(publish=("kadaster.query.outcome",), subscribe=())
    if parsed.kind == "fod":
        # The FOD operates the register: every query, and the micro service's ping, info and stats;
        # like an auditor, it may keep the ledger's checkpoints.
        return (
            own
            | Permissions(publish=("kadaster.query.>", "$SRV.*.kadaster", "$SRV.*.kadaster.*"), subscribe=())
            | CHECKPOINT_READER
        )
    # FANC, RIZIV and VAZG read the register's views for their own work, not the raw command log.
    return own | Permissions(
        publish=("kadaster.query.*",),
        subscribe=(),
        publish_deny=tuple(f"kadaster.query.{name}" for name in OPERATOR_ONLY_QUERIES),
    )


AUDITOR = "auditor"
CHECKPOINT_SUBJECT = "kadaster.evt.ledger.checkpoint"
# Hearing each checkpoint as it is published, and reading the newest one from KADASTER_EVT
# (`kadaster audit verify --published`): nothing else of the stream.
CHECKPOINT_READER = Permissions(
    publish=(
        f"$JS.API.STREAM.MSG.GET.{EVT_STREAM}",
        f"$JS.API.DIRECT.GET.{EVT_STREAM}.{CHECKPOINT_SUBJECT}",
    ),
    subscribe=(CHECKPOINT_SUBJECT,),
)
# The contract's auditor reads everything and sends nothing: every query, the checkpoints, no command.
AUDITOR_PERMISSIONS = (
    Permissions(publish=("kadaster.query.>",), subscribe=(f"_INBOX.{AUDITOR}.>",)) | CHECKPOINT_READER
)

_STREAMS = (CMD_STREAM, OUTCOME_STREAM, EVT_STREAM)
# Every role ensures the streams and the ingest consumer at start (adapters.bootstrap.started).
_EVERY_ROLE = Permissions(
    publish=(
        "$JS.API.INFO",
        *(f"$JS.API.STREAM.INFO.{s}" for s in _STREAMS),
        *(f"$JS.API.STREAM.CREATE.{s}" for s in _STREAMS),
        f"$JS.API.CONSUMER.INFO.{CMD_STREAM}.{INGEST_CONSUMER}",
        f"$JS.API.CONSUMER.CREATE.{CMD_STREAM}.{INGEST_CONSUMER}",
        f"$JS.API.CONSUMER.DURABLE.CREATE.{CMD_STREAM}.{INGEST_CONSUMER}",
        "$SRV.PING.kadaster",  # `kadaster health`
    ),
    subscribe=("_INBOX.>",),
)
ROLE_PERMISSIONS: dict[Role, Permissions] = {
    "ingest": Permissions(
        publish=(
            f"$JS.API.CONSUMER.MSG.NEXT.{CMD_STREAM}.{INGEST_CONSUMER}",
            # The ack subject's layout belongs to the server (and grows tokens across versions).
            "$JS.ACK.>",
            "kadaster.outcome.>",
        ),
        subscribe=(),
    ),
    "relay": Permissions(
        publish=(
            "kadaster.evt.>",
            f"$JS.API.STREAM.MSG.GET.{EVT_STREAM}",
            f"$JS.API.DIRECT.GET.{EVT_STREAM}",
            f"$JS.API.DIRECT.GET.{EVT_STREAM}.>",
        ),
        subscribe=(),
    ),
    "projector": Permissions(publish=(), subscribe=()),
    # A responder publishes its replies to whatever reply subject the requester chose. Answering only
    # under `_INBOX.` (and without `allow_responses`, which would honour any reply subject) keeps a
    # hospital from steering an answer onto kadaster.outcome.*, kadaster.evt.* or the JetStream API.
    "rpc": Permissions(publish=("_INBOX.>",), subscribe=("kadaster.rpc.hospital.*.midid.issue", "$SRV.>")),
    "api": Permissions(publish=("_INBOX.>",), subscribe=("kadaster.query.>", "$SRV.>")),
    # Operations (the `nats` CLI, backups of the streams): everything. Never for a process that answers.
    "admin": Permissions(publish=(">",), subscribe=(">",)),
}
RESPONDER_ROLES: frozenset[Role] = frozenset({"rpc", "api"})
WRITER_ROLES: frozenset[Role] = frozenset({"ingest", "relay", "admin"})


def service_permissions(roles: Iterable[Role]) -> Permissions:
    permissions = _EVERY_ROLE
    for role in roles:
        permissions = permissions | ROLE_PERMISSIONS[role]
    return permissions


def parties_users(parties: PartiesFile) -> list[NatsUser]:
    sources = [
        *(f"hospital/{i}" for i in parties.institutions),
        *(f"supplier/{s}" for s in parties.suppliers),
        *parties.authorities,
    ]
    users = [
        NatsUser(user_name(s), party_permissions(s), source=s, inbox_prefix=inbox_prefix(s)) for s in sources
    ]
    users.append(
        NatsUser(
            AUDITOR,
            AUDITOR_PERMISSIONS,
            inbox_prefix=f"_INBOX.{AUDITOR}",
            duty="auditor: reads every query and the ledger's checkpoints, sends nothing",
        )
    )
    taken = {u.name for u in users}
    for name, roles in parties.service_roles().items():
        if not _NAME.fullmatch(name):
            raise PartiesError(f"service user {name!r} is not a name ([A-Za-z0-9_-], 1 to 64 characters)")
        if name in taken:
            raise PartiesError(f"service user {name!r} has the name of a party")
        if not roles:
            raise PartiesError(f"service user {name!r} runs no role")
        taken.add(name)
        users.append(NatsUser(name, service_permissions(roles), roles=roles))
    return users


def mixed_duties(user: NatsUser) -> bool:
    """A user that both answers requests and writes to streams can be steered by a reply subject."""
    return bool(set(user.roles) & RESPONDER_ROLES and set(user.roles) & WRITER_ROLES)


@dataclass(frozen=True)
class Secret:
    """A password as its user holds it (`plain`) and as nats-server checks it (`bcrypt`, if hashed)."""

    plain: str | None
    bcrypt: str | None = None

    @property
    def in_config(self) -> str:
        value = self.bcrypt or self.plain
        assert value is not None
        return value


Hasher = Callable[[str, "str | None"], str]


def bcrypt_hasher(cost: int = BCRYPT_COST) -> Hasher | None:
    """bcrypt through the platform's crypt(3) (glibc's libxcrypt has it); None where it is missing."""
    try:
        with warnings.catch_warnings():
            # Deprecated (gone in Python 3.13), hence optional: the fallback is plain text in a 0600 file.
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt
    except ImportError:
        return None
    probe = crypt.crypt("probe", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
    if not probe or not _BCRYPT.fullmatch(probe):
        return None

    def hash_password(password: str, previous: str | None) -> str:
        # Re-running keeps a hash that still matches, so an unchanged user's line stays unchanged.
        if previous and crypt.crypt(password, previous) == previous:
            return previous
        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=2**cost))

    return hash_password


@dataclass
class Credentials:
    """The last run's secrets, kept so that re-running changes only what it must."""

    secrets: dict[str, Secret] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> Credentials:
        if not path.exists():
            return cls()
        try:
            entries = json.loads(path.read_text())
            return cls(
                {
                    user: Secret(str(entry["password"]), entry.get("bcrypt"))
                    for user, entry in entries.items()
                    if "password" in entry
                }
            )
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise PartiesError(
                f"{path}: not a credentials file written by kadaster nats-config ({error})"
            ) from None


def assign_secrets(
    users: Sequence[NatsUser],
    given: Mapping[str, str],
    previous: Credentials,
    rotate: Iterable[str] = (),
    hasher: Hasher | None = None,
) -> dict[str, Secret]:
    """Each user's password: given, else kept from the last run, else new and random; hashed if `hasher`."""
    names = {u.name for u in users}
    rotate = set(rotate)
    rotate_all = "all" in rotate
    unknown = (set(given) | (rotate - {"all"})) - names
    if unknown:
        raise PartiesError(f"no such user: {', '.join(sorted(unknown))}")
    assigned: dict[str, Secret] = {}
    for user in users:
        kept = previous.secrets.get(user.name)
        if user.name in given:
            value = given[user.name]
            if _BCRYPT.fullmatch(value):
                assigned[user.name] = Secret(None, value)
                continue
            if not _PLAIN_PASSWORD.fullmatch(value):
                raise PartiesError(
                    f"password of {user.name}: use 16 to 128 characters of letters, digits and "
                    "_.~!@#%^&*()+=:,;?/- or a bcrypt hash"
                )
            plain = value
        elif kept is not None and kept.plain and not (rotate_all or user.name in rotate):
            # Adding a hospital must not change everybody's password.
            plain = kept.plain
        else:
            plain = secrets.token_urlsafe(32)
        previous_hash = kept.bcrypt if kept is not None and kept.plain == plain else None
        assigned[user.name] = Secret(plain, hasher(plain, previous_hash) if hasher else None)
    return assigned


def authorization(users: Sequence[NatsUser], assigned: Mapping[str, Secret]) -> dict[str, Any]:
    return {
        "authorization": {
            "users": [
                {
                    "user": u.name,
                    "password": assigned[u.name].in_config,
                    "permissions": u.permissions.as_config(),
                }
                for u in users
            ]
        }
    }


def render_conf(users: Sequence[NatsUser], assigned: Mapping[str, Secret], origin: str) -> str:
    """The `authorization` block in nats-server syntax, one commented entry per user."""
    q = json.dumps  # every value is restricted to characters a quoted nats-server string takes as is
    hashed = all(assigned[u.name].bcrypt for u in users)
    lines = [
        f"# NATS users of the kadaster, from {origin} by `kadaster nats-config`. Regenerate, do not edit.",
        "# Passwords are bcrypt hashes."
        if hashed
        else "# Holds plain-text passwords: keep it readable by nats-server only (0600).",
        "authorization {",
        "  users = [",
    ]
    for user in users:
        what = user.source or user.duty or f"service: {', '.join(user.roles)}"
        lines.append(f"    # {what}")
        lines.append(
            f"    {{user: {q(user.name)}, password: {q(assigned[user.name].in_config)}, permissions: {{"
        )
        config = user.permissions.as_config()
        for direction in ("publish", "subscribe"):
            parts = [
                f"{kind}: [{', '.join(q(s) for s in subjects)}]"
                for kind, subjects in config[direction].items()
            ]
            lines.append(f"      {direction}: {{{', '.join(parts)}}}")
        lines.append("    }}")
    lines += ["  ]", "}", ""]
    return "\n".join(lines)


def credentials_document(
    users: Sequence[NatsUser], assigned: Mapping[str, Secret]
) -> dict[str, dict[str, Any]]:
    """What each party (or service deployment) is handed: user, password and inbox prefix."""
    document: dict[str, dict[str, Any]] = {}
    for user in users:
        entry: dict[str, Any] = {"inbox_prefix": user.inbox_prefix}
        if user.source:
            entry["source"] = user.source
        elif user.duty:
            entry["duty"] = user.duty
        else:
            entry["roles"] = list(user.roles)
        secret = assigned[user.name]
        if secret.plain:
            entry["password"] = secret.plain
        if secret.bcrypt:
            entry["bcrypt"] = secret.bcrypt
        document[user.name] = entry
    return document


def client_options(credentials: Mapping[str, Any], source: str) -> dict[str, Any]:
    """`nats.connect` options for a party: `KadasterClient.connect(url, source, **client_options(...))`."""
    name = user_name(source)
    entry = credentials.get(name)
    if entry is None or "password" not in entry:
        raise PartiesError(f"no password for {name} in the credentials")
    return {"user": name, "password": entry["password"], "inbox_prefix": entry["inbox_prefix"]}


def load_parties(path: Path) -> PartiesFile:
    try:
        text = path.read_text()
        raw = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (OSError, ValueError) as error:  # tomllib.TOMLDecodeError and JSONDecodeError are ValueErrors
        raise PartiesError(f"{path}: {error}") from None
    try:
        return PartiesFile.model_validate(raw)
    except ValidationError as error:
        problems = [
            f"{'.'.join(str(p) for p in item['loc']) or '(file)'}: {item['msg']}"
            for item in error.errors(include_url=False)
        ]
        raise PartiesError(f"{path}:\n  " + "\n  ".join(problems)) from None


def write_private(path: Path, text: str) -> None:
    """Writes a file only its owner can read, replacing any old one in one step."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


def generate(
    parties_path: Path,
    out: Path | None,
    credentials_path: Path,
    output_format: str = "conf",
    rotate: Iterable[str] = (),
    hashing: str = "auto",
) -> tuple[str, list[NatsUser]]:
    """Writes the credentials file (and `out`, if given); returns the configuration text and its users."""
    parties = load_parties(parties_path)
    users = parties_users(parties)
    hasher = bcrypt_hasher() if hashing != "plain" else None
    if hashing == "bcrypt" and hasher is None:
        raise PartiesError(
            "this platform's crypt(3) has no bcrypt (or Python has no crypt module): use --hash plain"
        )
    assigned = assign_secrets(users, parties.passwords, Credentials.read(credentials_path), rotate, hasher)
    if output_format == "json":
        text = json.dumps(authorization(users, assigned), indent=2) + "\n"
    else:
        text = render_conf(users, assigned, parties_path.name)
    write_private(credentials_path, json.dumps(credentials_document(users, assigned), indent=2) + "\n")
    if out is not None:
        write_private(out, text)
    return text, users


def cmd_nats_config(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else None
    parties = Path(args.parties)
    # Beside the parties file (the operator's own), not beside `out`, which nats-server's hosts see.
    credentials = Path(args.credentials) if args.credentials else parties.with_name("credentials.json")
    try:
        text, users = generate(parties, out, credentials, args.format, args.rotate or (), args.hash)
    except PartiesError as error:
        print(f"kadaster nats-config: {error}", file=sys.stderr)
        return 2
    for user in users:
        if mixed_duties(user):
            print(
                f"kadaster nats-config: warning: {user.name} runs {', '.join(user.roles)}: a requester could "
                "steer its replies onto the streams it writes; give rpc and api a user of their own "
                "(as docker-compose.yml does)",
                file=sys.stderr,
            )
    if out is None:
        sys.stdout.write(text)
    else:
        print(
            f"wrote {out} ({len(users)} users) and {credentials}; reload nats-server to apply "
            "(nats-server --signal reload, or SIGHUP)",
            file=sys.stderr,
        )
    return 0
