"""Options several console commands share: reaching the running service, asking as of a moment, paging."""

from __future__ import annotations

import argparse
import os


def client_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--nats-url",
        help="NATS server of the running service (default: KADASTER_NATS_URL, "
        "else the embedded server on 127.0.0.1:KADASTER_EMBEDDED_NATS_PORT)",
    )
    p.add_argument(
        "--credentials",
        default=os.environ.get("KADASTER_CREDENTIALS"),
        help="credentials.json written by `kadaster nats-config` (default: KADASTER_CREDENTIALS)",
    )
    p.add_argument("--json", action="store_true", help="print JSON for scripts instead of a table")


def hospital_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hospital", help="ask as this hospital (institution id): only its own rows are answered")


def as_of_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--as-of",
        metavar="T",
        help="what the register said at this moment (ISO 8601, UTC unless a zone is given; "
        "a bare date is the end of that day): every store transaction recorded by then, none after",
    )


def in_force_on_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--in-force-on",
        metavar="DAY",
        help="each device as in force on this business date (YYYY-MM-DD): changes and "
        "decommissionings dated later do not show yet (default: today, or the --as-of day)",
    )


def page_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--limit", type=int, help="rows per page, 1..1000 (default 100)")
    p.add_argument("--offset", type=int, help="rows to skip (default 0)")
