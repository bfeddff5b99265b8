"""The `kadaster` console's commands: each one's name, help, parser and the function that carries it out.

Reading a command line takes only this table and the parsers in `adapters.cli.arguments`. A command's
function is named here as `module:function` and imported when that command runs, so that `--help` or a
client command does not first load the web application, the event store and NATS.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from adapters.cli.arguments import access, audit, client, contract, legacy, nats_config, read, rounds, service

Setup = Callable[[argparse.ArgumentParser], None]
"""Gives a command's own parser its description and arguments."""


def load(target: str) -> Callable[..., Any]:
    """The function a `module:function` reference names, importing its module now."""
    module, _, name = target.partition(":")
    function: Callable[..., Any] = getattr(importlib.import_module(module), name)
    return function


@dataclass(frozen=True)
class Runs:
    """A command's function, imported only when the command runs (the parser's `func`)."""

    target: str

    def __call__(self, args: argparse.Namespace) -> int:
        result: int = load(self.target)(args)
        return result


@dataclass(frozen=True)
class Command:
    """A command: its name, its line in its parent's `--help`, its parser's set-up and its function."""

    name: str
    help: str
    setup: Setup | None
    runs: str
    """`module:function` carrying the command out, given the parsed arguments, returning the exit code."""


@dataclass(frozen=True)
class Group:
    """A command whose actions are commands of their own (`kadaster audit verify`)."""

    name: str
    help: str
    setup: Setup | None
    commands: tuple[Command | Group, ...]
    metavar: str = "ACTION"


Entry = Command | Group


def add_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], entries: Sequence[Entry]
) -> None:
    for entry in entries:
        parser = subparsers.add_parser(entry.name, help=entry.help)
        if entry.setup is not None:
            entry.setup(parser)
        if isinstance(entry, Group):
            actions = parser.add_subparsers(
                dest=f"{entry.name}_command", required=True, metavar=entry.metavar
            )
            add_commands(actions, entry.commands)
        else:
            parser.set_defaults(func=Runs(entry.runs))


def commands(entries: Sequence[Entry] | None = None) -> Iterator[Command]:
    """Every command of the table (or of `entries`), the actions of groups included."""
    for entry in COMMANDS if entries is None else entries:
        if isinstance(entry, Group):
            yield from commands(entry.commands)
        else:
            yield entry


COMMANDS: tuple[Entry, ...] = (
    Command(
        "serve",
        "run every role (embedded NATS and SQLite by default)",
        service.serve,
        "adapters.cli.service:cmd_serve",
    ),
    Command(
        "run",
        "run the given roles together in one process (what each of serve's children runs)",
        service.run,
        "adapters.cli.service:cmd_serve",
    ),
    *(
        Command(role, service.role_help(role), service.role(role), "adapters.cli.service:cmd_serve")
        for role in service.ROLE_HELP
    ),
    Group(
        "midid",
        "request, list and cancel MID-IDs as a hospital",
        None,
        (
            Command(
                "issue",
                "request a MID-ID in real time",
                client.midid_issue,
                "adapters.cli.client:cmd_midid_issue",
            ),
            Command(
                "list",
                "a hospital's MID-IDs with modality and status",
                client.midid_list,
                "adapters.cli.client:cmd_midid_list",
            ),
            Command(
                "cancel",
                "cancel an unlinked MID-ID of one's own (never reissued)",
                client.midid_cancel,
                "adapters.cli.client:cmd_midid_cancel",
            ),
        ),
    ),
    Command(
        "send",
        "send any command of the contract and print its outcome",
        client.send,
        "adapters.cli.client:cmd_send",
    ),
    Command(
        "query",
        "run any query of the contract and print its JSON answer",
        client.query,
        "adapters.cli.client:cmd_query",
    ),
    Command(
        "outcome",
        "the outcome of a command, by envelope id",
        client.outcome,
        "adapters.cli.client:cmd_outcome",
    ),
    Command(
        "health",
        "check that a role's dependencies answer (for container healthchecks)",
        service.health,
        "adapters.cli.service:cmd_health",
    ),
    Group(
        "devices",
        "the kadaster view: every device as the register shows it",
        read.devices,
        (
            Command(
                "list",
                "list devices, filtered and sorted, a page at a time",
                read.devices_list,
                "adapters.cli.read:cmd_devices_list",
            ),
        ),
    ),
    Command(
        "device",
        "one device by MID-ID, with who said each field and when",
        read.device,
        "adapters.cli.read:cmd_device",
    ),
    Command(
        "history",
        "every event about a MID-ID, a round or an institution, in order",
        read.history,
        "adapters.cli.read:cmd_history",
    ),
    Command(
        "discrepancies",
        "where sources disagree, deadlines passed or numbers were misused",
        read.discrepancies,
        "adapters.cli.read:cmd_discrepancies",
    ),
    Command(
        "capacity",
        "devices in service per province and modality, per 100,000 inhabitants",
        read.capacity,
        "adapters.cli.read:cmd_capacity",
    ),
    Group(
        "projections",
        "the read models: rebuild one from the first event, or show where each stands",
        read.projections,
        (
            Command(
                "rebuild",
                "rebuild read models from position 0 while the service keeps answering",
                read.projections_rebuild,
                "adapters.cli.read_models:cmd_projections_rebuild",
            ),
            Command(
                "status",
                "each read model's position, version and lag behind the event store",
                read.projections_status,
                "adapters.cli.read_models:cmd_projections_status",
            ),
        ),
    ),
    Group(
        "rounds",
        "allocation rounds: import a series, rankings, decisions, verification",
        rounds.rounds,
        (
            Command(
                "import",
                "record a care-region series file (CONTRACT.md) as commands",
                rounds.importing,
                "adapters.cli.rounds:cmd_import",
            ),
            Command(
                "ranking",
                "a trimester's care-region ranking (or a round's, with --round)",
                rounds.ranking,
                "adapters.cli.rounds:cmd_ranking",
            ),
            Command(
                "show",
                "one round: inputs, ranking, decisions and reasons",
                rounds.show,
                "adapters.cli.rounds:cmd_show",
            ),
            Command("list", "every round with its status", rounds.listing, "adapters.cli.rounds:cmd_list"),
            Command(
                "verify",
                "recompute decided rounds from their recorded inputs",
                rounds.verify,
                "adapters.cli.verify_rounds:cmd_verify",
            ),
        ),
    ),
    Group(
        "legacy",
        "import the legacy kadaster register and write the hospitals' MID-ID letters",
        legacy.legacy,
        (
            Command(
                "import",
                "check and record a legacy register file (CSV or XLSX)",
                legacy.importing,
                "adapters.cli.legacy:cmd_legacy_import",
            ),
            Command(
                "letters",
                "write each hospital's list of devices with the MID-ID each received",
                legacy.letters,
                "adapters.cli.legacy:cmd_legacy_letters",
            ),
        ),
    ),
    Group(
        "audit",
        "verify the tamper-evident ledger, replay the register as of a moment, tell a MID-ID's story",
        audit.audit,
        (
            Command(
                "verify",
                "recompute the ledger from the stored events and report tampering",
                audit.verify,
                "adapters.cli.audit:cmd_audit_verify",
            ),
            Command(
                "advance",
                "hash new events and record signed checkpoints now",
                audit.advance,
                "adapters.cli.audit:cmd_audit_advance",
            ),
            Group(
                "checkpoints",
                "the signed checkpoints recorded so far",
                None,
                (
                    Command(
                        "export",
                        "write them as JSON lines (for `audit verify --checkpoints`)",
                        audit.checkpoints_export,
                        "adapters.cli.audit:cmd_audit_checkpoints_export",
                    ),
                ),
            ),
            Command(
                "replay",
                "rebuild every read model as of a moment into a separate database",
                audit.replay,
                "adapters.cli.audit:cmd_audit_replay",
            ),
            Command(
                "history",
                "the full story of a MID-ID and its device, or of a round, as the register recorded it",
                audit.history,
                "adapters.cli.audit:cmd_audit_history",
            ),
            Command(
                "rotate-key",
                "record a new ledger signing key (the only way a ledger with checkpoints takes another key)",
                audit.rotate_key,
                "adapters.cli.audit:cmd_audit_rotate_key",
            ),
            Command(
                "public-key",
                "print the ledger's public key (PEM)",
                audit.public_key,
                "adapters.cli.audit:cmd_audit_public_key",
            ),
        ),
    ),
    Group(
        "export",
        "export every event (JSON lines) or the kadaster (CSV, XLSX)",
        audit.export,
        (
            Command(
                "events",
                "every stored event in log order, as JSON lines",
                audit.export_events,
                "adapters.cli.audit:cmd_export_events",
            ),
            Command(
                "kadaster",
                "one row per device (the kadaster view), CSV or XLSX",
                audit.export_kadaster,
                "adapters.cli.audit:cmd_export_kadaster",
            ),
        ),
        metavar="WHAT",
    ),
    Group(
        "contract",
        "the integration contract as AsyncAPI and JSON Schema documents",
        contract.contract,
        (
            Command(
                "asyncapi",
                "print the AsyncAPI document (YAML) to stdout",
                contract.asyncapi,
                "adapters.contract.docs:cmd_asyncapi",
            ),
            Command(
                "schemas",
                "write one JSON Schema per message type into a folder",
                contract.schemas,
                "adapters.contract.docs:cmd_schemas",
            ),
            Command(
                "write",
                "regenerate the checked-in documents",
                contract.write,
                "adapters.contract.docs:cmd_write",
            ),
            Command(
                "check",
                "exit 1 and name the documents that are out of date",
                contract.check,
                "adapters.contract.docs:cmd_check",
            ),
        ),
    ),
    Command(
        "nats-config",
        "generate the NATS users and permissions of every party from a parties file",
        nats_config.nats_config,
        "adapters.nats.accounts:cmd_nats_config",
    ),
    Group(
        "people",
        "local accounts and the roles people hold",
        access.people,
        (
            Command(
                "add",
                "create a local account and grant it a role",
                access.people_add,
                "adapters.cli.access:cmd_people_add",
            ),
            Command(
                "list",
                "local accounts and the roles they hold now",
                access.people_list,
                "adapters.cli.access:cmd_people_list",
            ),
            Command(
                "revoke",
                "revoke a role a person holds",
                access.people_revoke,
                "adapters.cli.access:cmd_people_revoke",
            ),
        ),
    ),
    Group(
        "tokens",
        "API tokens of the HTTP API, one party each",
        None,
        (
            Command(
                "issue",
                "issue a token (printed once; only its hash is kept)",
                access.tokens_issue,
                "adapters.cli.access:cmd_tokens_issue",
            ),
            Command(
                "list",
                "every token: party, label, whether in force",
                access.tokens_list,
                "adapters.cli.access:cmd_tokens_list",
            ),
            Command(
                "revoke",
                "revoke a token, effective at once",
                access.tokens_revoke,
                "adapters.cli.access:cmd_tokens_revoke",
            ),
        ),
    ),
    Command(
        "config",
        "show the settings in force and every variable",
        service.config,
        "adapters.cli.settings:cmd_config",
    ),
)
"""Every command, in the order `kadaster --help` lists them."""
