"""`kadaster projections rebuild|status`: the read models themselves, worked on in this process."""

from __future__ import annotations

import argparse
import json
import sys

from adapters.bootstrap import open_projector_for_maintenance
from adapters.cli.common import emit, settings_or_exit
from adapters.cli.progress import ProgressBar
from projections.projector import Projector
from projections.rebuild import rebuild, status
from projections.store import ReadModelStore
from services.register import Register

STATUS_COLUMNS = ["name", "version", "code_version", "position", "head", "lag", "state"]


def _open_projector() -> tuple[Register, ReadModelStore, Projector]:
    return open_projector_for_maintenance(settings_or_exit())


def cmd_projections_rebuild(args: argparse.Namespace) -> int:
    register, store, projector = _open_projector()
    try:
        names = [args.name] if args.name else [p.name for p in projector.projections]
        unknown = [name for name in names if name not in {p.name for p in projector.projections}]
        if unknown:
            known = ", ".join(p.name for p in projector.projections)
            print(f"kadaster: no read model named {unknown[0]!r} (known: {known})", file=sys.stderr)
            return 2
        results = []
        for name in names:
            bar = ProgressBar(name)
            try:
                results.append(rebuild(projector, name, progress=bar, batch_size=args.batch_size).as_dict())
            finally:
                bar.close()
            if not args.json:
                done = results[-1]
                print(
                    f"{name}: rebuilt from {done['events']:,} events up to position {done['position']:,} "
                    f"in {done['seconds']:.1f}s"
                )
        if args.json:
            print(json.dumps(results, indent=2))
        return 0
    finally:
        store.close()
        register.close()


def cmd_projections_status(args: argparse.Namespace) -> int:
    register, store, projector = _open_projector()
    try:
        items = status(projector)
    finally:
        store.close()
        register.close()
    emit(args, {"items": items}, STATUS_COLUMNS)
    return 0 if all(item["state"] != "outdated" for item in items) else 1
