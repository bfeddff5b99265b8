"""`kadaster config`: the settings in force and every variable that sets one."""

from __future__ import annotations

import argparse

from adapters.cli.common import settings_or_exit
from adapters.config import describe_settings


def cmd_config(args: argparse.Namespace) -> int:
    settings = settings_or_exit()
    if args.json:
        print(settings.model_dump_json(indent=2))
    else:
        print("Settings in force:")
        for name, value in settings.model_dump().items():
            shown = "***" if ("password" in name or "secret" in name) and value else value
            print(f"  {name} = {shown}")
        print("\nEnvironment variables:\n" + describe_settings())
    return 0
