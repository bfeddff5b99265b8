"""The parsers of `kadaster audit` (the ledger, replays, a MID-ID's story) and `kadaster export`."""

from __future__ import annotations

import argparse

VERIFY_HELP = """\
Recomputes the Merkle tree (RFC 6962) and the hash chain from every stored event and compares them
with the signed checkpoints the register recorded: prints `intact`, or the first position where the
stored events disagree (exit code 1). With --checkpoints, also checks every checkpoint an auditor
kept (JSON lines, as published on kadaster.evt.ledger.checkpoint or written by `audit checkpoints
export`): its signature, and that today's log still has its root at its size (it extends it).
With --published, the newest checkpoint on KADASTER_EVT is checked the same way. A log shorter
than a checkpoint found outside the database (cut at its tail) is reported, exit code 1.
"""
REPLAY_FILE = "kadaster.readmodels.db"
"""The SQLite file, in the folder `audit replay --out` names, that receives the replayed read models."""


def audit(p: argparse.ArgumentParser) -> None:
    p.description = (
        "The event log is hashed into a Merkle tree (RFC 6962) with signed "
        "checkpoints (Ed25519). These commands read the event store directly "
        "(KADASTER_DATABASE_URL); `history` reads the read models (KADASTER_READMODEL_URL), "
        "bringing them up to date first. None needs a running service."
    )


def verify(p: argparse.ArgumentParser) -> None:
    p.description = VERIFY_HELP
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--checkpoints", metavar="FILE", help="JSON lines of checkpoints kept earlier, to check")
    p.add_argument(
        "--public-key",
        metavar="PEM",
        action="append",
        help="the ledger's public key (repeatable; default: the configured ledger key)",
    )
    p.add_argument(
        "--published",
        action="store_true",
        help="also check the newest checkpoint the service published on KADASTER_EVT (read over NATS)",
    )
    p.add_argument("--nats-url", metavar="URL", help="NATS for --published (default: KADASTER_NATS_URL)")
    p.add_argument(
        "--credentials", metavar="FILE", help="credentials file from `kadaster nats-config`, for --published"
    )
    p.add_argument("--nats-user", metavar="USER", help="user in --credentials (default: auditor)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def advance(p: argparse.ArgumentParser) -> None:
    p.description = (
        "What the relay role does every few seconds; creates the key "
        "in the data dir on first use when KADASTER_LEDGER_KEY is unset."
    )
    p.add_argument("--json", action="store_true")


def checkpoints_export(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", metavar="FILE", help="file to write (default: standard output)")
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")


def replay(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Replays the events recorded up to --until (their recording time) into new read "
        f"models in DIR/{REPLAY_FILE} (SQLite), beside a replay.json summary. The event store is only read."
    )
    p.add_argument("--until", required=True, metavar="T", help="ISO 8601 moment, or a date (its end)")
    p.add_argument("--out", required=True, metavar="DIR", help="an empty or new folder")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def history(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Every event about a MID-ID and its device (or an allocation round), in the order "
        "recorded, with source, command id, recording time and business date, read from the audit "
        "history read model (KADASTER_READMODEL_URL) after bringing it up to date with the event store; "
        "with --as-of, only the store transactions recorded up to then. `audit replay` recomputes it "
        "from the events alone. --json adds each event's data."
    )
    p.add_argument("subject", help="a MID-ID (e.g. MID-0000001-95) or a round id (e.g. nmr-2023)")
    p.add_argument(
        "--as-of", metavar="T", help="only what was recorded up to this moment (whole store transactions)"
    )
    p.add_argument("--json", action="store_true", help="print JSON with every event's data")


def rotate_key(p: argparse.ArgumentParser) -> None:
    p.add_argument("--reason", required=True, help="why the key is replaced (recorded)")
    p.add_argument("--by", help="who rotates it (recorded; default: the login name)")


def public_key(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", metavar="FILE", help="file to write (default: standard output)")
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")


def export(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Events are read from the event store (KADASTER_DATABASE_URL), the kadaster from "
        "the read models (KADASTER_READMODEL_URL), brought up to date with the event store first. "
        "--as-of takes an ISO 8601 moment (UTC unless a zone is given); a bare date means the end of "
        "that day, UTC. A moment is cut between the store's transactions, never inside one."
    )


def export_events(p: argparse.ArgumentParser) -> None:
    p.description = (
        "One JSON object per line: position, aggregate_id, version, type, "
        "topic, recorded_at and the event's data."
    )
    p.add_argument("--format", choices=["jsonl"], default="jsonl")
    p.add_argument("--out", metavar="FILE", help="file to write (default: standard output)")
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    p.add_argument("--as-of", metavar="T", help="only events recorded at or before this moment")


def export_kadaster(p: argparse.ArgumentParser) -> None:
    p.description = (
        "The kadaster view, as the `devices` query answers it, read from the read models' "
        "row versions as of the moment (default: now): MID-ID, institution, province, campus, modality, "
        "manufacturer, model, serial number, use, installation date, status, FANC licence, old FANC "
        "number, billing number and dates. XLSX has one sheet per modality."
    )
    p.add_argument("--format", choices=["csv", "xlsx"], default="csv")
    p.add_argument("--out", metavar="FILE", help="file to write (default: standard output)")
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    p.add_argument("--as-of", metavar="T", help="the kadaster as the register said it at this moment")
    p.add_argument(
        "--in-force-on",
        metavar="D",
        help="the business date: each device as in force on that day, changes dated later not yet "
        "(default: today, or the day of --as-of)",
    )
