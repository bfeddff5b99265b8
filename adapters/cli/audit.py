"""The auditors' commands: `kadaster audit ...` (ledger, checkpoints, key) and `kadaster export ...`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import os
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TextIO, cast

import nats
from pydantic import ValidationError

from adapters.bootstrap import NoEventStore, all_projections, open_read_models, open_register
from adapters.cli.arguments.audit import REPLAY_FILE
from adapters.cli.common import client_url, print_table, settings_or_exit
from adapters.cli.progress import ProgressBar
from adapters.cli.read import HISTORY_COLUMNS
from adapters.files.exports import kadaster_rows, write_events_jsonl, write_kadaster_csv, write_kadaster_xlsx
from adapters.files.safe_files import (
    PRIVATE,
    PUBLIC,
    OutputRefused,
    check_output,
    private_directory,
    private_sqlite_file,
    written,
)
from adapters.ledger.keys import (
    LedgerKeyError,
    default_key_path,
    load_public_key,
    load_signer,
    signature_check,
    write_new_key,
)
from adapters.ledger.publisher import newest_published_checkpoint, read_checkpoint
from adapters.ledger.runner import open_ledger, recorded_keys
from adapters.ledger.store import SqlCheckpointStore
from domain.errors import DomainError
from domain.identifiers import MidId
from domain.ledger_key import LedgerKeys
from projections.projector import Projector
from projections.queries import MAX_PAGE, Queries, QueryError
from projections.rebuild import status
from projections.replay import parse_as_of, replay
from projections.store import ReadModelStore
from services.ledger import Checkpoint

if TYPE_CHECKING:
    from adapters.config import Settings
    from services.ledger import VerificationReport
    from services.register import Register


def _settings() -> Settings:
    return settings_or_exit()


def _fail(message: str, code: int = 2) -> int:
    print(f"kadaster: {message}", file=sys.stderr)
    return code


class _Unavailable(Exception):
    """The event store or a key cannot be opened; the message says what to do."""


def _open_register(settings: Settings) -> Register:
    # Opening a SQLite file that is not there would create an empty register and verify it.
    try:
        return open_register(settings, create=False)
    except NoEventStore as error:
        raise _Unavailable(str(error)) from None


@contextlib.contextmanager
def _output(
    path: str | None, binary: bool = False, force: bool = False, public: bool = False
) -> Iterator[IO[Any]]:
    """Standard output, or a new file (0600, or 0644 for `public` data); see `adapters.files.safe_files`."""
    if path is None or path == "-":
        yield sys.stdout.buffer if binary else sys.stdout
        return
    with written(Path(path), force, PUBLIC if public else PRIVATE, binary) as handle:
        yield handle


def _refused_output(args: argparse.Namespace) -> int | None:
    """Exit code 2 and a one-line reason when `--out` is an existing file (without --force) or a symlink."""
    if args.out and args.out != "-":
        try:
            check_output(Path(args.out), args.force)
        except OutputRefused as error:
            return _fail(str(error))
    return None


# audit


def _public_keys(args: argparse.Namespace, settings: Settings) -> list[Any]:
    if args.public_key:
        return [load_public_key(Path(path)) for path in args.public_key]
    configured = settings.ledger_key or default_key_path(settings.data_dir)
    return [load_public_key(configured)] if configured.exists() else []


def _kept_checkpoints(path: str) -> list[Checkpoint]:
    """JSON lines of checkpoints, each a `ledger.checkpoint` CloudEvent or a bare checkpoint."""
    kept = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                # A line may be the published CloudEvent as it came, or its data.
                kept.append(read_checkpoint(line))
            except ValidationError as error:
                raise _Unavailable(
                    f"{path}:{number} is not a checkpoint: {error.errors()[0]['msg']}"
                ) from None
            except ValueError as error:
                raise _Unavailable(f"{path}:{number} is not a checkpoint: {error}") from None
    return kept


def _published_checkpoint(args: argparse.Namespace, settings: Settings) -> list[Checkpoint]:
    """The newest checkpoint the service published on KADASTER_EVT (none when it published none)."""
    url = client_url(args, settings)
    options: dict[str, Any] = {"connect_timeout": 3, "allow_reconnect": False, "max_reconnect_attempts": 0}
    if args.credentials:
        with open(args.credentials, encoding="utf-8") as handle:
            entry = json.load(handle).get(args.nats_user or "auditor")
        if not entry or "password" not in entry:
            raise _Unavailable(f"no password for {args.nats_user or 'auditor'} in {args.credentials}")
        options.update(user=args.nats_user or "auditor", password=entry["password"])
        options["inbox_prefix"] = entry.get("inbox_prefix", "_INBOX")

    async def newest() -> list[Checkpoint]:
        try:
            nc = await nats.connect(url.split(","), **options)
        except Exception as error:
            raise _Unavailable(f"cannot reach NATS at {url} for the published checkpoints: {error}") from None
        try:
            found = await asyncio.wait_for(newest_published_checkpoint(nc.jetstream()), timeout=10)
        except Exception as error:
            raise _Unavailable(f"cannot read the published checkpoints from {url}: {error}") from None
        finally:
            await nc.close()
        return [] if found is None else [found]

    return asyncio.run(newest())


def _print_report(report: VerificationReport) -> None:
    if report.first_discrepancy is not None:
        print(f"TAMPERED at position {report.first_discrepancy.position}: {report.first_discrepancy.message}")
    elif report.last_checkpoint is None:
        print(
            f"{report.events:,} events read; the ledger has recorded no checkpoint to compare them with yet"
        )
    else:
        last = report.last_checkpoint
        print(
            f"intact: {report.covered:,} of {report.events:,} events match the ledger "
            f"(checkpoint at {last.tree_size:,}, signed {last.timestamp} by key {last.key_id})"
        )
        if report.unchecked:
            print(f"{report.unchecked:,} newer events are not yet in a checkpoint")
    print(f"root  {report.root_hash}  (tree size {report.events:,})")
    for result in report.kept:
        state = "ok     " if result.ok else "REFUSED"
        checkpoint = result.checkpoint
        print(
            f"kept checkpoint {state} tree size {checkpoint.tree_size:,} ({checkpoint.timestamp}): "
            f"{result.reason}"
        )


def cmd_audit_verify(args: argparse.Namespace) -> int:
    settings = _settings()
    try:
        keys = _public_keys(args, settings)
        kept = _kept_checkpoints(args.checkpoints) if args.checkpoints else []
        if args.published:
            published = _published_checkpoint(args, settings)
            if not published:
                print("kadaster: no checkpoint has been published on KADASTER_EVT yet", file=sys.stderr)
            kept += published
        register = _open_register(settings)
    except (LedgerKeyError, _Unavailable, OSError) as error:
        return _fail(str(error))
    if kept and not keys:
        register.close()
        return _fail("checking kept checkpoints needs the ledger's public key (--public-key FILE)")
    if not keys:
        print(
            "kadaster: no public key: the recorded checkpoints' signatures are not checked", file=sys.stderr
        )
    progress = ProgressBar("verifying")
    try:
        ledger = open_ledger(register, settings, signing=False)
        report = ledger.verify(kept, signature_check(keys) if keys else None, progress)
    finally:
        progress.close()
        register.close()
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        _print_report(report)
    return 0 if report.intact else 1


def cmd_audit_advance(args: argparse.Namespace) -> int:
    settings = _settings()
    try:
        register = _open_register(settings)
    except _Unavailable as error:
        return _fail(str(error))
    try:
        recorded = open_ledger(register, settings).advance()
    except LedgerKeyError as error:
        return _fail(str(error))
    finally:
        register.close()
    if args.json:
        print(json.dumps([checkpoint.model_dump() for checkpoint in recorded], indent=2))
    elif recorded:
        print(
            f"recorded {len(recorded)} checkpoint(s); tree size {recorded[-1].tree_size:,}, "
            f"root {recorded[-1].root_hash}"
        )
    else:
        print("nothing new to record")
    return 0


def cmd_audit_rotate_key(args: argparse.Namespace) -> int:
    """Records a new signing key: the old one (if still there) is kept aside, never overwritten."""
    settings = _settings()
    path = settings.ledger_key or default_key_path(settings.data_dir)
    try:
        register = _open_register(settings)
    except _Unavailable as error:
        return _fail(str(error))
    try:
        last = SqlCheckpointStore(register.recorder).last_block()
        previous = last.checkpoint.key_id if last is not None else None
        if path.exists():
            with contextlib.suppress(LedgerKeyError):
                previous = load_signer(path).key_id
        pending = path.with_name(f".{path.name}.new")
        if pending.exists() or pending.is_symlink():
            pending.unlink()
        signer = write_new_key(pending)
        keys = recorded_keys(register) or LedgerKeys()
        try:
            keys.rotate(previous, signer.key_id, args.reason, by=args.by or getpass.getuser())
        except DomainError as error:
            pending.unlink()
            return _fail(str(error))
        register.save(keys)
        if path.exists():
            retired = path.with_name(f"{path.stem}.{previous or 'unknown'}.retired{path.suffix}")
            os.replace(path, retired)
            print(f"the previous key is kept as {retired}", file=sys.stderr)
        os.replace(pending, path)
    finally:
        register.close()
    print(f"ledger key rotated: {previous or '(none)'} -> {signer.key_id}; recorded in the register")
    print("give auditors the new public key: kadaster audit public-key", file=sys.stderr)
    return 0


def cmd_audit_checkpoints_export(args: argparse.Namespace) -> int:
    if (refused := _refused_output(args)) is not None:
        return refused
    settings = _settings()
    try:
        register = _open_register(settings)
    except _Unavailable as error:
        return _fail(str(error))
    try:
        checkpoints = SqlCheckpointStore(register.recorder).checkpoints()
    finally:
        register.close()
    with _output(args.out, force=args.force, public=True) as out:
        for checkpoint in checkpoints:
            out.write(checkpoint.to_json_line() + "\n")
    if args.out:
        print(f"{len(checkpoints)} signed checkpoint(s) written to {args.out}", file=sys.stderr)
    return 0


def cmd_audit_public_key(args: argparse.Namespace) -> int:
    if (refused := _refused_output(args)) is not None:
        return refused
    settings = _settings()
    path = settings.ledger_key or default_key_path(settings.data_dir)
    if not path.exists():
        return _fail(
            f"no ledger key at {path} yet: the relay role creates it when it first runs "
            "(or `kadaster audit advance`)"
        )
    try:
        key = load_public_key(path)
    except LedgerKeyError as error:
        return _fail(str(error))
    with _output(args.out, force=args.force, public=True) as out:
        out.write(key.pem())
    print(f"key id {key.key_id}", file=sys.stderr)
    return 0


def cmd_audit_replay(args: argparse.Namespace) -> int:
    settings = _settings()
    try:
        until = parse_as_of(args.until)
    except ValueError as error:
        return _fail(f"--until: {error}")
    out = Path(args.out)
    target = out / REPLAY_FILE
    if target.exists() or target.is_symlink():
        return _fail(f"{target} already exists: replay into an empty folder")
    try:
        check_output(out / "replay.json", force=False)
        private_directory(out)
    except OutputRefused as error:
        return _fail(str(error))
    try:
        register = _open_register(settings)
    except _Unavailable as error:
        return _fail(str(error))
    private_sqlite_file(target)
    store = ReadModelStore(f"sqlite:///{target.resolve()}")
    progress = ProgressBar("replaying")
    try:
        done = replay(register, store, all_projections(), until, progress)
    finally:
        progress.close()
        store.close()
        register.close()
    summary = {**done.as_dict(), "database": str(target)}
    with written(out / "replay.json", force=False) as handle:
        handle.write(json.dumps(summary, indent=2) + "\n")
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"replayed {done.events:,} events recorded up to {until.isoformat()} "
            f"(log read to position {done.position:,}) in {done.seconds:.1f}s"
        )
        print(f"read models as of then: {target} (SQLite; tables rm_devices, rm_mid_ids, rm_history, ...)")
    return 0


def _history_filters(subject: str) -> dict[str, str]:
    """A MID-ID (in any accepted spelling) or else a round id."""

    if subject.strip().upper().startswith("MID"):
        try:
            return {"mid_id": str(MidId.parse(subject, "mid_id"))}
        except DomainError as error:
            raise ValueError(error.details[0].message) from None
    return {"round_id": subject.strip()}


def _read_models(settings: Settings, register: Register) -> tuple[ReadModelStore, Projector]:
    """The live read models (KADASTER_READMODEL_URL), brought up to date with the log here first.

    A projector role may be running on them at the same time: each store transaction is still
    applied once. A read model built by another version of the code is left alone (refused).
    """
    store, projector = open_read_models(settings, register)
    try:
        outdated = [item for item in status(projector) if item["state"] == "outdated"]
        if outdated:
            first = outdated[0]
            raise _Unavailable(
                f"the read model {first['name']} was built by version {first['version']} of its code, "
                f"this is version {first['code_version']}: run `kadaster projections rebuild "
                f"{first['name']}` (or start the projector role) first"
            )
        progress = ProgressBar("bringing the read models up to date")
        try:
            projector.catch_up(progress=progress)
        finally:
            progress.close()
    except BaseException:
        store.close()
        raise
    return store, projector


def cmd_audit_history(args: argparse.Namespace) -> int:
    settings = _settings()
    try:
        filters: dict[str, Any] = _history_filters(args.subject)
        until = parse_as_of(args.as_of) if args.as_of else None
        register = _open_register(settings)
    except (ValueError, _Unavailable) as error:
        return _fail(str(error))
    try:
        store, _ = _read_models(settings, register)
    except _Unavailable as error:
        register.close()
        return _fail(str(error))
    moment = {} if until is None else {"as_of": until.isoformat()}
    items: list[dict[str, Any]] = []
    try:
        # The history read model keeps every event it was told, cut as of the moment when one is given.
        queries = Queries(register, store)
        while True:
            page = queries.run("history", {**filters, **moment, "limit": MAX_PAGE, "offset": len(items)})
            items += page["items"]
            if len(page["items"]) < MAX_PAGE:
                break
    except QueryError as error:
        return _fail(f"{error.detail.code}: {error.detail.message}", 1)
    finally:
        store.close()
        register.close()
    answer = {**filters, "as_of": None if until is None else until.isoformat(), "items": items}
    if args.json:
        print(json.dumps(answer, indent=2, default=str))
    else:
        print_table(items, HISTORY_COLUMNS)
        when = "" if until is None else f" recorded up to {until.isoformat()}"
        print(f"\n{len(items)} events{when}")
    return 0


# export


def _as_of(args: argparse.Namespace) -> Any:
    return parse_as_of(args.as_of) if args.as_of else None


def cmd_export_events(args: argparse.Namespace) -> int:
    if (refused := _refused_output(args)) is not None:
        return refused
    settings = _settings()
    try:
        as_of = _as_of(args)
        register = _open_register(settings)
    except (ValueError, _Unavailable) as error:
        return _fail(str(error))
    progress = ProgressBar("exporting events")
    try:
        with _output(args.out, force=args.force) as out:
            count = write_events_jsonl(register, cast(TextIO, out), as_of, progress)
    finally:
        progress.close()
        register.close()
    if args.out:
        print(f"{count:,} events written to {args.out}", file=sys.stderr)
    return 0


def cmd_export_kadaster(args: argparse.Namespace) -> int:
    if args.format == "xlsx" and not args.out and sys.stdout.isatty():
        return _fail("an XLSX export goes to a file: add --out FILE.xlsx")
    if (refused := _refused_output(args)) is not None:
        return refused
    settings = _settings()
    try:
        as_of = _as_of(args)
        in_force_on = date.fromisoformat(args.in_force_on) if args.in_force_on else None
        register = _open_register(settings)
    except ValueError as error:
        return _fail(f"{error} (--as-of is a moment, --in-force-on a date such as 2024-04-23)")
    except _Unavailable as error:
        return _fail(str(error))
    try:
        store, _ = _read_models(settings, register)
    except _Unavailable as error:
        register.close()
        return _fail(str(error))
    progress = ProgressBar("exporting devices")
    try:
        rows = kadaster_rows(store, as_of, progress, in_force_on)
        if args.format == "xlsx":
            with _output(args.out, binary=True, force=args.force) as out:
                count = write_kadaster_xlsx(rows, out, as_of)
        else:
            with _output(args.out, force=args.force) as out:
                count = write_kadaster_csv(rows, cast(TextIO, out))
    finally:
        progress.close()
        store.close()
        register.close()
    if args.out:
        print(f"{count:,} devices written to {args.out}", file=sys.stderr)
    return 0
