"""The parser of `kadaster nats-config`: every party's NATS user and permissions from a parties file."""

from __future__ import annotations

import argparse


def nats_config(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Writes the `authorization` block for nats-server (to `include`): one user per "
        "hospital, supplier and authority, allowed only its own subjects, and the service's users, allowed "
        "only what their roles need. Passwords are random unless the parties file gives one (or a bcrypt "
        "hash); re-running keeps the passwords already in the credentials file unless --rotate names the "
        "user. The credentials file (0600) maps each user to its password and inbox prefix: hand each party "
        "its entry."
    )
    p.epilog = (
        'Parties file (TOML or JSON): institutions = ["H001"], suppliers = ["S001"], '
        'authorities = ["fod", "fanc", "riziv", "vazg"], [services] kadaster = ["ingest", "projector", '
        '"relay"], kadaster-responder = ["rpc", "api"], [passwords] fod = "$2a$11$...".'
    )
    p.add_argument("--parties", required=True, metavar="FILE", help="parties file (.toml or .json)")
    p.add_argument("--out", metavar="FILE", help="write the configuration here (0600) instead of stdout")
    p.add_argument(
        "--credentials",
        metavar="FILE",
        help="credentials file to read and write (default: credentials.json beside the parties file)",
    )
    p.add_argument(
        "--format",
        choices=["conf", "json"],
        default="conf",
        help="nats-server syntax (default) or JSON (nats-server reads both)",
    )
    p.add_argument(
        "--hash",
        choices=["auto", "bcrypt", "plain"],
        default="auto",
        help="passwords in the configuration as bcrypt hashes (auto: where crypt(3) has bcrypt) "
        "or plain text; the credentials file always holds them in plain text",
    )
    p.add_argument(
        "--rotate",
        action="append",
        metavar="USER",
        help="give this user a new random password (repeatable; `all` for everyone)",
    )
