"""The parsers of `kadaster rounds`: importing a care-region series, rankings, rounds, verification."""

from __future__ import annotations

import argparse

from adapters.cli.arguments.common import client_options


def rounds(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Allocation rounds for scarce capacity (new MRI devices, residential-care "
        "places). Every input is recorded; every decision can be recomputed and verified."
    )


def importing(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Records each trimester of the file through the same commands as "
        "live messages (open, corrections, close, decide, grants, finalise). Command ids "
        "derive from the file, so importing it again changes nothing."
    )
    p.add_argument("file", help="the series file (JSON)")
    client_options(p)


def ranking(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Prints region, programme figure, filled places, fill rate (percent, "
        "two decimals, rounded half-up) and rank (1 = lowest fill rate = priority)."
    )
    p.add_argument("period", help="trimester such as 2017Q1, or a round id with --round")
    p.add_argument("--round", action="store_true", help="PERIOD is a round id (e.g. an nmr round)")
    client_options(p)


def show(p: argparse.ArgumentParser) -> None:
    p.add_argument("round_id")
    client_options(p)


def listing(p: argparse.ArgumentParser) -> None:
    client_options(p)


def verify(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Reads the event store directly (KADASTER_DATABASE_URL) and recomputes "
        "every decision with its recorded policy version; exit 1 on any difference."
    )
    p.add_argument("round_id", nargs="?", help="only this round")
    p.add_argument("--json", action="store_true")
