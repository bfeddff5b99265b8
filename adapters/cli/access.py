"""`kadaster people` and `kadaster tokens`: local accounts, their roles, and API tokens, from the console."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

from adapters.bootstrap import open_register
from adapters.config import Settings, SettingsError, load_settings
from adapters.credentials import Credentials
from domain.access import GRANTED_BY_THE_FOD, Access, access_id
from domain.identifiers import Source
from services.processor import CommandProcessor, Inbound
from services.register import Register

CONSOLE = "console"
"""The channel of commands recorded from the console, straight on the event store."""


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as error:
        print(f"kadaster: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def granting_source(role: str, party: str) -> str:
    """The FOD grants local-admins and the authorities' roles; a hospital its own people's other roles."""
    return "fod" if role in GRANTED_BY_THE_FOD else party


def record_access(register: Register, type_: str, data: dict[str, Any]) -> dict[str, Any]:
    """Sends access.grant or access.revoke through the command pipeline, as the party that grants."""
    source = granting_source(data["role"], data["party"])
    envelope = {
        "specversion": "1.0",
        "id": f"console-{uuid.uuid4()}",
        "source": source,
        "type": type_,
        "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json",
        "data": data,
    }
    subject = f"{Source.parse(source).command_subject_prefix}.{type_}"
    (handled,) = CommandProcessor(register).process(
        [Inbound(json.dumps(envelope).encode(), subject, channel=CONSOLE)]
    )
    return handled.outcome


def _refused(outcome: dict[str, Any]) -> int:
    for error in outcome.get("errors", []):
        print(f"kadaster: {error['code']}: {error['message']}", file=sys.stderr)
    return 1


def _password(args: argparse.Namespace) -> str | None:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            print("kadaster: no password on standard input", file=sys.stderr)
            raise SystemExit(2)
        return password
    if sys.stdin.isatty():
        first = getpass.getpass(f"Password for {args.login}: ")
        if first and first == getpass.getpass("Again: "):
            return first
        print("kadaster: the passwords differ or are empty", file=sys.stderr)
        raise SystemExit(2)
    return None


def cmd_people_add(args: argparse.Namespace) -> int:
    settings = _settings()
    password = _password(args)
    register = open_register(settings)
    credentials = Credentials(settings.credentials_database_url)
    try:
        data = {"person": args.login, "name": args.name, "party": args.party, "role": args.role}
        if args.until:
            data["until"] = args.until
        outcome = record_access(register, "access.grant", data)
        if outcome["status"] != "accepted":
            return _refused(outcome)
        credentials.add_account(args.login, args.name, args.party, password)
    finally:
        credentials.close()
        register.close()
    how = "with a password" if password else "without a password (signs in through OpenID Connect)"
    print(f"{args.login}: {args.role} of {args.party}, {how}")
    return 0


def cmd_people_list(args: argparse.Namespace) -> int:
    settings = _settings()
    register = open_register(settings)
    credentials = Credentials(settings.credentials_database_url)
    rows: list[dict[str, Any]] = []
    try:
        today = datetime.now(UTC).date()
        for account in credentials.accounts():
            access = register.load(Access, access_id(account.login, account.party))
            roles = (
                sorted(r for r in access.roles if access.holds(r, today))
                if isinstance(access, Access)
                else []
            )
            rows.append(
                {
                    "login": account.login,
                    "name": account.name,
                    "party": account.party,
                    "roles": roles,
                    "password": account.has_password,
                }
            )
    finally:
        credentials.close()
        register.close()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows or [{"login": "(nobody)", "name": "", "party": "", "roles": [], "password": False}]:
            print(f"{row['login']:<20} {row['name']:<24} {row['party']:<18} {','.join(row['roles'])}")
    return 0


def cmd_people_revoke(args: argparse.Namespace) -> int:
    settings = _settings()
    register = open_register(settings)
    try:
        data = {"person": args.login, "party": args.party, "role": args.role, "reason": args.reason}
        outcome = record_access(register, "access.revoke", data)
    finally:
        register.close()
    if outcome["status"] != "accepted":
        return _refused(outcome)
    print(f"{args.login}: no longer {args.role} of {args.party}")
    return 0


def cmd_tokens_issue(args: argparse.Namespace) -> int:
    credentials = Credentials(_settings().credentials_database_url)
    try:
        token, secret = credentials.issue_token(args.party, args.label, args.expires)
    finally:
        credentials.close()
    if args.json:
        print(
            json.dumps(
                {"token": secret, "id": token.id, "party": token.party, "expires_at": token.expires_at}
            )
        )
    else:
        until = f", until {token.expires_at}" if token.expires_at else ""
        print(f"token {token.id} for {token.party} ({token.label}{until}); shown this once:\n{secret}")
    return 0


def cmd_tokens_list(args: argparse.Namespace) -> int:
    credentials = Credentials(_settings().credentials_database_url)
    try:
        tokens = credentials.tokens()
    finally:
        credentials.close()
    now = datetime.now(UTC)
    rows = [{**token.__dict__, "in_force": token.in_force(now)} for token in tokens]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows or [{"id": "(none)", "party": "", "label": "", "in_force": ""}]:
            state = "" if row["in_force"] == "" else ("in force" if row["in_force"] else "expired or revoked")
            print(f"{row['id']:<14} {row['party']:<18} {row['label']:<30} {state}")
    return 0


def cmd_tokens_revoke(args: argparse.Namespace) -> int:
    credentials = Credentials(_settings().credentials_database_url)
    try:
        found = credentials.revoke_token(args.id)
    finally:
        credentials.close()
    if not found:
        print(f"kadaster: no token {args.id}", file=sys.stderr)
        return 1
    print(f"token {args.id} revoked")
    return 0
