"""`kadaster rounds verify`: every decided round recomputed from its inputs as the event store holds them."""

from __future__ import annotations

import argparse
import json
import sys

from adapters.bootstrap import open_register
from adapters.cli.common import settings_or_exit
from domain.errors import DomainError
from services.rounds import verify_rounds


def cmd_verify(args: argparse.Namespace) -> int:
    """Reads the event store itself: an auditor should not have to trust the running service."""

    register = open_register(settings_or_exit())
    try:
        reports = verify_rounds(register, args.round_id)
    except DomainError as error:
        print(f"kadaster: {error}", file=sys.stderr)
        return 2
    finally:
        register.close()
    if args.json:
        print(json.dumps(reports, indent=2, default=str))
    else:
        for report in reports:
            state = "ok" if report["ok"] else "DIFFERS"
            print(f"{report['round_id']}: {state} ({report['checked']} decision(s) recomputed)")
            for difference in report["differences"]:
                print(
                    f"  {difference['step']} {difference['path']}: recorded {difference['recorded']!r}, "
                    f"recomputed {difference['recomputed']!r}"
                )
    return 0 if all(r["ok"] for r in reports) else 1
