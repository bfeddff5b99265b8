"""The parsers of the running register's plain clients: `kadaster midid`, `send`, `query` and `outcome`."""

from __future__ import annotations

import argparse

from adapters.cli.arguments.common import client_options


def midid_issue(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Asks the register for the next MID-ID for one modality. Granted unconditionally; grants no rights."
    )
    p.add_argument("--hospital", required=True, help="institution id of the requesting hospital, e.g. H001")
    p.add_argument("--modality", required=True, help="CT, PET, PET-CT, PET-MRI, SPECT-CT or MRI")
    p.add_argument("--note", help="free text kept with the MID-ID, e.g. the tender it is for")
    p.add_argument("--id", help="envelope id to use (re-using it returns the same MID-ID)")
    client_options(p)


def midid_list(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Lists the hospital's MID-IDs: issued (still free), linked "
        "(to a device in the kadaster) or cancelled."
    )
    p.add_argument("--hospital", required=True, help="institution id, e.g. H001")
    p.add_argument("--modality", help="only this modality")
    p.add_argument("--status", choices=["issued", "linked", "cancelled"], help="only this status")
    p.add_argument("--as-of", metavar="T", help="the list as it stood at this moment (ISO 8601)")
    client_options(p)


def midid_cancel(p: argparse.ArgumentParser) -> None:
    p.add_argument("mid_id", help="the MID-ID, e.g. MID-0000001-95 (dashes and case do not matter)")
    p.add_argument("--hospital", required=True, help="institution id of its holder")
    p.add_argument("--reason", required=True, help="why it is cancelled")
    p.add_argument("--id", help="envelope id to use")
    client_options(p)


def send(p: argparse.ArgumentParser) -> None:
    p.add_argument("type", help="command type, e.g. device.report")
    p.add_argument("--source", required=True, help="hospital/<id>, supplier/<id>, fod, fanc, riziv or vazg")
    p.add_argument("--data", required=True, help="the command's data as JSON, or @file.json")
    p.add_argument("--id", help="envelope id (re-using one never has a second effect)")
    client_options(p)


def query(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="midids, outcome, commands, ...")
    p.add_argument("-f", "--filter", action="append", help="key=value filter, repeatable")
    p.add_argument("--hospital", help="ask as this hospital (only its own data)")
    client_options(p)


def outcome(p: argparse.ArgumentParser) -> None:
    p.add_argument("command_id")
    p.add_argument("--source", help="the sender, when several used the same id")
    client_options(p)
