"""The parsers of `kadaster people` and `kadaster tokens`: local accounts, their roles, API tokens."""

from __future__ import annotations

import argparse

from domain.access import ROLES, WHOLE_REGISTER
from domain.identifiers import Source


def party(text: str) -> str:
    if text == WHOLE_REGISTER:
        return text
    try:
        return str(Source.parse(text, "--party"))
    except Exception:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a party (hospital/<id>, supplier/<id>, fod, fanc, riziv, vazg, "
            "or * for an auditor)"
        ) from None


def people(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Works straight on the event store and the credentials database; no running "
        "service is needed. Roles are granted and revoked as access.grant and access.revoke commands."
    )


def people_add(p: argparse.ArgumentParser) -> None:
    p.description = (
        "The FOD grants local-admin, operator, admin and auditor; a hospital's requester, "
        "reporter and viewer roles are granted as that hospital."
    )
    p.add_argument("login", help="the person's login: their id in the register")
    p.add_argument("--name", required=True, help="the person's name")
    p.add_argument("--party", required=True, type=party, help="hospital/H001, fod, ..., or * (auditor)")
    p.add_argument("--role", required=True, choices=sorted(ROLES), help="the role granted")
    p.add_argument("--until", help="last day the role holds (YYYY-MM-DD)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")


def people_list(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true")


def people_revoke(p: argparse.ArgumentParser) -> None:
    p.add_argument("login")
    p.add_argument("--party", required=True, type=party)
    p.add_argument("--role", required=True, choices=sorted(ROLES))
    p.add_argument("--reason", required=True, help="why the role ends")


def tokens_issue(p: argparse.ArgumentParser) -> None:
    p.add_argument("--party", required=True, type=party, help="hospital/H001, fod, ..., or * (auditor)")
    p.add_argument("--label", required=True, help="what or who the token is for")
    p.add_argument("--expires", type=float, metavar="DAYS", help="expires after this many days")
    p.add_argument("--json", action="store_true", help='print {"token": ...}')


def tokens_list(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true")


def tokens_revoke(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", help="the token's id (from `tokens list`)")
