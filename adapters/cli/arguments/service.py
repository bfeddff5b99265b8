"""The parsers of `kadaster serve`, `run`, each role, `health` and `config`."""

from __future__ import annotations

import argparse
from collections.abc import Callable

ROLE_HELP = {
    "ingest": "consume KADASTER_CMD in batches and record every command exactly once",
    "rpc": "answer real-time MID-ID requests (kadaster.rpc.hospital.<id>.midid.issue)",
    "projector": "keep the read models up to date from the event store",
    "relay": "publish every public domain event once, as a CloudEvent, on kadaster.evt.<aggregate>.<event>",
    "api": "answer queries over NATS (kadaster.query.>) and the read-only HTTP API",
}


def serve(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Runs ingest, rpc, projector, relay and api together: by default as child "
        "processes under one supervisor (ingest and rpc share the writer process), one log stream, "
        "a dead child restarted (KADASTER_RESTART_LIMIT within KADASTER_RESTART_WINDOW_SECONDS); "
        "KADASTER_SERVE_MODE=single runs them in one process. Stops cleanly on Ctrl-C or SIGTERM. "
        "The service is ready when `$SRV.PING.kadaster` answers."
    )


def run(p: argparse.ArgumentParser) -> None:
    p.description = "Runs the given roles in one process, against KADASTER_NATS_URL or an embedded server."
    p.add_argument("roles", nargs="+", choices=list(ROLE_HELP), metavar="ROLE", help=", ".join(ROLE_HELP))
    p.add_argument("--supervised", action="store_true", help=argparse.SUPPRESS)


def role_help(role: str) -> str:
    return f"run only the {role} role: {ROLE_HELP[role]}"


def role(name: str) -> Callable[[argparse.ArgumentParser], None]:
    def describe(p: argparse.ArgumentParser) -> None:
        p.description = f"Runs the {name} role: {ROLE_HELP[name]}. Several instances may run at once."

    return describe


def health(p: argparse.ArgumentParser) -> None:
    p.add_argument("role", choices=[*ROLE_HELP, "serve"], help="the role to check")
    p.add_argument("--nats-url", help="NATS server (default: KADASTER_NATS_URL or the embedded one)")


def config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true")
