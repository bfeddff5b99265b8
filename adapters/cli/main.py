"""The `kadaster` command: run the service or one of its roles, and talk to a running register."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from adapters.cli.arguments.service import ROLE_HELP
from adapters.cli.commands import COMMANDS, add_commands, load

DESCRIPTION = """\
kadaster: the register of Belgium's heavy medical imaging devices (CT, PET, PET-CT, PET-MRI,
SPECT-CT, MRI). Hospitals, suppliers, the FOD, FANC, RIZIV and VAZG send it messages over NATS;
it issues MID-IDs in real time, keeps every event, and answers queries.

Run `kadaster serve` to start everything in one process (with no configuration it starts its own
nats-server on 127.0.0.1:4322 and keeps events in SQLite under ./.kadaster). The other commands
are clients of a running service.
"""

SETTINGS = "Configuration (environment variables, or a TOML file named by KADASTER_SETTINGS_FILE):\n"
SETTINGS_HELP = "adapters.config:describe_settings"
CONSOLE_LOGGING = "adapters.logging:configure_logging"
"""The log set-up of every command but the service's own, which configures logging from its settings."""


class Console(argparse.ArgumentParser):
    """`kadaster` itself, whose help ends with every setting: written from the settings model when shown."""

    def format_help(self) -> str:
        self.epilog = SETTINGS + load(SETTINGS_HELP)()
        return super().format_help()


def build_parser() -> argparse.ArgumentParser:
    parser = Console(
        prog="kadaster", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=argparse.ArgumentParser
    )
    add_commands(commands, COMMANDS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command not in ("serve", "run") and args.command not in ROLE_HELP:
        load(CONSOLE_LOGGING)(
            "console" if sys.stderr.isatty() else "json",
            os.environ.get("KADASTER_LOG_LEVEL", "warning").lower(),
        )
    try:
        result: int = args.func(args)
    except BrokenPipeError:
        # The reader stopped early (`| head`): nothing more to say, and nothing to say it to.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return result


if __name__ == "__main__":
    raise SystemExit(main())
