"""Who is calling the HTTP API: a bearer token's party or a signed-in person, and what they may read."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from starlette.requests import Request

from adapters.credentials import Credentials
from adapters.fair_share import FairShare
from domain.access import WHOLE_REGISTER, Access, access_id
from domain.errors import DomainError
from domain.identifiers import AUTHORITIES
from services.register import Register

SESSION_COOKIE = "kadaster_session"
FOD_ONLY_QUERIES = ("commands",)
"""Every sender's raw messages: the FOD's and the auditors' (NATS denies them to the others too)."""
SYSTEM = "system"
"""The role of a party's own system, speaking through an API token."""


class Unauthorized(Exception):
    """No valid credentials (HTTP 401 `unauthorized`)."""


class Forbidden(Exception):
    """Valid credentials, but not for this (HTTP 403 `forbidden`)."""


@dataclass(frozen=True)
class Principal:
    """A party's system (token) or a person acting for a party (session), with the roles in force."""

    party: str
    person: str | None
    roles: frozenset[str]
    csrf: str | None = None

    @property
    def kind(self) -> str:
        return self.party.partition("/")[0]

    @property
    def reads_nationally(self) -> bool:
        """Authorities and auditors read the whole register; hospitals and suppliers their own."""
        if not self.roles:
            return False
        return self.party == WHOLE_REGISTER or self.kind in AUTHORITIES

    def check_reads(self, institution: str | None) -> None:
        """`institution`: the hospital whose data is asked for; None: national data."""
        if not self.roles:
            raise Forbidden(f"{self.person or self.party} holds no role of {self.party} in force")
        if self.reads_nationally:
            return
        if institution is None:
            raise Forbidden(
                f"{self.party} reads only its own data: ask under /hospitals/<institution>/..."
                if self.kind == "hospital"
                else f"{self.party} reads no register data"
            )
        if self.party != f"hospital/{institution}":
            raise Forbidden(f"{self.party} may not read hospital {institution}'s data")

    def check_asks(self, query: str, institution: str | None) -> None:
        """The whole raw command log is the FOD's and the auditors', as over NATS; a hospital's own is its."""
        if institution is None and query in FOD_ONLY_QUERIES and self.party not in ("fod", WHOLE_REGISTER):
            raise Forbidden(f"{query} is the FOD's query, not {self.party}'s")

    def check_sends(self) -> None:
        if self.party == WHOLE_REGISTER or not self.roles:
            raise Forbidden(f"{self.person or self.party} sends no commands")


@dataclass
class Sessions:
    """Signed cookie sessions with an idle and an absolute timeout; each carries its own CSRF token."""

    secret: str
    idle_seconds: float
    absolute_seconds: float
    secure: bool = False
    serializer: URLSafeSerializer = field(init=False)

    def __post_init__(self) -> None:
        self.serializer = URLSafeSerializer(self.secret, salt="kadaster-session")

    def new(self, person: str, party: str) -> dict[str, Any]:
        now = time.time()
        return {
            "person": person,
            "party": party,
            "began": now,
            "seen": now,
            "csrf": secrets.token_urlsafe(24),
        }

    def encode(self, session: dict[str, Any]) -> str:
        return str(self.serializer.dumps(session))

    def decode(self, cookie: str | None, now: float | None = None) -> dict[str, Any] | None:
        """The session in the cookie, if it is genuine and neither idle nor old too long."""
        if not cookie:
            return None
        try:
            session: Any = self.serializer.loads(cookie)
        except BadSignature:
            return None
        now = time.time() if now is None else now
        if not isinstance(session, dict) or not {"person", "party", "began", "seen", "csrf"} <= set(session):
            return None
        if now - session["seen"] > self.idle_seconds or now - session["began"] > self.absolute_seconds:
            return None
        return session

    def cookie_options(self) -> dict[str, Any]:
        return {"httponly": True, "samesite": "lax", "secure": self.secure, "path": "/"}


def session_secret(configured: str | None, data_dir: Path) -> str:
    """The configured key, else one made once and kept in the data dir (set one for several processes)."""
    if configured:
        return configured
    path = data_dir / "session.key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48))
    return path.read_text().strip()


class Guard:
    """Resolves the caller of each request; every check reads the current grants and tokens."""

    def __init__(
        self, credentials: Credentials, register: Register, sessions: Sessions, fair_share: FairShare
    ) -> None:
        self.credentials = credentials
        self.register = register
        self.sessions = sessions
        self.fair_share = fair_share

    def roles_of(self, person: str, party: str) -> frozenset[str]:
        access = self.register.load(Access, access_id(person, party))
        if not isinstance(access, Access):
            return frozenset()
        today = datetime.now(UTC).date()
        return frozenset(role for role in access.roles if access.holds(role, today))

    def check_person_sends(self, principal: Principal, command_type: str) -> None:
        """A person's command is checked against their roles at the moment it is received."""
        assert principal.person is not None
        access = self.register.load(Access, access_id(principal.person, principal.party))
        if not isinstance(access, Access):
            raise Forbidden(f"{principal.person} holds no role of {principal.party}")
        try:
            access.check_may_send(command_type, datetime.now(UTC).date())
        except DomainError as error:
            raise Forbidden(str(error)) from None

    def principal(self, request: Request) -> Principal:
        """Blocking (reads the store): call it from a worker thread."""
        header = request.headers.get("authorization")
        if header is not None:
            scheme, _, presented = header.partition(" ")
            if scheme.lower() != "bearer" or not presented.strip():
                raise Unauthorized("give Authorization: Bearer <token>")
            token = self.credentials.token_for(presented.strip())
            if token is None:
                raise Unauthorized("the token is unknown, expired or revoked")
            return Principal(token.party, None, frozenset({SYSTEM}))
        session = self.sessions.decode(request.cookies.get(SESSION_COOKIE))
        if session is None:
            raise Unauthorized("sign in, or give Authorization: Bearer <token>")
        request.state.session = session
        roles = self.roles_of(session["person"], session["party"])
        return Principal(session["party"], session["person"], roles, session["csrf"])
