"""What every console command shares: settings, tables and JSON, and a connected client."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from adapters.config import Settings, SettingsError, load_settings
from adapters.nats.accounts import client_options
from adapters.nats.client import KadasterClient, KadasterError, QueryFailed
from domain.errors import DomainError
from domain.identifiers import Source

EXIT_OK = 0
EXIT_REFUSED = 1
"""A command was rejected, a query found nothing, a check failed (`audit verify`: tampering)."""
EXIT_USAGE = 2
"""The request itself is wrong: an argument, a file that cannot be read, a setting."""
EXIT_UNREACHABLE = 3
"""NATS or the service does not answer; retrying with the same --id is safe."""


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as error:
        print(f"kadaster: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def client_url(args: argparse.Namespace, settings: Settings) -> str:
    return str(args.nats_url or settings.nats_url or f"nats://127.0.0.1:{settings.embedded_nats_port}")


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    if not rows:
        print("(nothing)")
        return
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def emit(args: argparse.Namespace, answer: Any, columns: Sequence[str] | None = None) -> None:
    if args.json or columns is None:
        print(json.dumps(answer, indent=2, default=str))
    elif isinstance(answer, dict) and "items" in answer:
        print_table(answer["items"], columns)
    else:
        print_table([answer], columns)


def print_outcome(args: argparse.Namespace, outcome: dict[str, Any]) -> int:
    if args.json:
        print(json.dumps(outcome, indent=2))
    elif outcome.get("status") == "accepted":
        details = ", ".join(f"{k}={v}" for k, v in (outcome.get("result") or {}).items())
        print(f"accepted {outcome.get('command_id')}: {details}")
    else:
        print(f"rejected {outcome.get('command_id')}:")
        for error in outcome.get("errors", []):
            where = f" ({error['field']})" if error.get("field") else ""
            print(f"  {error['code']}{where}: {error['message']}")
    return 0 if outcome.get("status") == "accepted" else 1


def run_client(args: argparse.Namespace, source: str, work: Callable[[Any], Awaitable[int]]) -> int:
    settings = settings_or_exit()
    try:
        Source.parse(source)
    except DomainError as error:
        print(f"kadaster: --source: {error}", file=sys.stderr)
        return EXIT_USAGE

    async def quiet(error: Exception) -> None:
        """The client's own error reports are tracebacks; the one line below says what went wrong."""

    extra: dict[str, Any] = {"error_cb": quiet}
    if getattr(args, "credentials", None):
        with open(args.credentials, encoding="utf-8") as handle:
            extra.update(client_options(json.load(handle), source))

    async def main() -> int:
        try:
            client = await KadasterClient.connect(
                client_url(args, settings),
                source,
                connect_timeout=3,
                max_reconnect_attempts=2,
                allow_reconnect=False,
                **extra,
            )
        except Exception as error:
            print(
                f"kadaster: cannot reach NATS at {client_url(args, settings)}: {error}. "
                "Is `kadaster serve` running? (--nats-url or KADASTER_NATS_URL)",
                file=sys.stderr,
            )
            return EXIT_UNREACHABLE
        async with client:
            try:
                return await work(client)
            except QueryFailed as error:
                for e in error.errors:
                    print(f"kadaster: {e.get('code')}: {e.get('message')}", file=sys.stderr)
                return 1
            except KadasterError as error:
                print(f"kadaster: {error}", file=sys.stderr)
                return EXIT_UNREACHABLE

    return asyncio.run(main())
