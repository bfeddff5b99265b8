"""`kadaster serve`, `run` and each role: the service itself; and `health`, the check of a role."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from adapters.bootstrap import ROLES, Running, freeze_startup_heap, serve
from adapters.cli.common import client_url, settings_or_exit
from adapters.cli.supervisor import READY_LINE, supervise
from adapters.http.health import check_health
from adapters.logging import configure_logging, uses_console


def cmd_serve(args: argparse.Namespace) -> int:
    settings = settings_or_exit()
    configure_logging(settings.log_format, settings.log_level)
    if args.command == "serve" and settings.serve_mode == "processes":
        try:
            return asyncio.run(supervise(settings, console=uses_console(settings.log_format)))
        except (RuntimeError, TimeoutError, OSError) as error:
            print(f"kadaster: {error}", file=sys.stderr)
            return 1
    if args.command == "serve":
        roles: Sequence[str] = ROLES
    elif args.command == "run":
        roles = args.roles
    else:
        roles = (args.command,)
    freeze_startup_heap()
    on_ready = tell_supervisor_ready if getattr(args, "supervised", False) else None
    try:
        clean = asyncio.run(serve(settings, roles, on_ready=on_ready))
    except (RuntimeError, TimeoutError, OSError) as error:
        print(f"kadaster: {error}", file=sys.stderr)
        return 1
    return 0 if clean else 1


def tell_supervisor_ready(running: Running) -> None:
    print(READY_LINE, flush=True)


def cmd_health(args: argparse.Namespace) -> int:
    """Exit 0 when this role's dependencies answer: NATS, the event store, and its own endpoints."""
    settings = settings_or_exit()
    problems = asyncio.run(check_health(settings, args.role, client_url(args, settings)))
    for problem in problems:
        print(f"unhealthy: {problem}", file=sys.stderr)
    if not problems:
        print(f"{args.role}: healthy")
    return 1 if problems else 0
