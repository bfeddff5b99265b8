"""`kadaster legacy ...`: import the legacy kadaster register (CSV, Excel); write the hospitals' letters."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import zipfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, TextIO

from eventsourcing.domain import EventSourcingError

from adapters.bootstrap import open_register
from adapters.cli.common import settings_or_exit
from adapters.cli.progress import PhasedProgress
from adapters.files.exports import as_text_cells
from adapters.files.legacy_workbook import read_legacy_register
from adapters.files.safe_files import OutputRefused, check_output, csv_text, private_directory, written
from services.legacy import DEFAULT_BATCH_SIZE
from services.legacy.letters import LETTER_COLUMNS, LetterLine, legacy_letters
from services.legacy.rows import LegacyFile
from services.legacy.run import ImportSummary, LegacyImport
from services.processor import CommandProcessor
from services.register import Register

Rows = list[tuple[int, Sequence[Any]]]
CSV_DELIMITERS = ";,\t|"


class UnreadableFile(Exception):
    """The file cannot be read as a table at all."""


# reading files

MAX_XLSX_ROWS = 200_000
MAX_XLSX_COLUMNS = 200


def read_rows(path: Path) -> Rows:
    """The cells of a CSV or XLSX file, each row with the number a spreadsheet shows for it."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm"):
            return _read_xlsx(path)
        if suffix in (".csv", ".txt", ".tsv"):
            return _read_csv(path.read_bytes())
    except OSError as error:
        raise UnreadableFile(f"cannot read {path}: {error.strerror or error}") from None
    if suffix == ".xls":
        raise UnreadableFile(f"{path.name} is an old Excel file: save it as .xlsx or CSV")
    raise UnreadableFile(f"{path.name}: expected a .csv or .xlsx file")


def _read_csv(data: bytes) -> Rows:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Excel on Windows saves "CSV (semicolon delimited)" in its own code page.
        text = data.decode("cp1252", errors="replace")
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = max(CSV_DELIMITERS, key=first_line.count) if first_line else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    return [(number, row) for number, row in enumerate(reader, start=1)]


def _read_xlsx(path: Path) -> Rows:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError) as error:
        raise UnreadableFile(f"{path.name} is not a readable .xlsx file: {error}") from None
    try:
        sheet = workbook.worksheets[0]
        rows, columns = sheet.max_row or 0, sheet.max_column or 0
        if rows > MAX_XLSX_ROWS or columns > MAX_XLSX_COLUMNS:
            raise UnreadableFile(_too_big(path, f"spans {rows:,} rows and {columns:,} columns"))
        # The declared size may be missing or wrong: read rows as stored, and stop at the limits.
        sheet.reset_dimensions()
        read: Rows = []
        for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            if number > MAX_XLSX_ROWS or len(row) > MAX_XLSX_COLUMNS:
                raise UnreadableFile(_too_big(path, f"has a cell in row {number:,}, column {len(row):,}"))
            read.append((number, list(row)))
        return read
    finally:
        workbook.close()


def _too_big(path: Path, what: str) -> str:
    return (
        f"{path.name}: its first sheet {what}; a legacy register has at most {MAX_XLSX_ROWS:,} rows and "
        f"{MAX_XLSX_COLUMNS} columns. Delete stray cells far below or to the right of the table, or "
        "save the sheet as CSV."
    )


def read_legacy_file(path: Path) -> LegacyFile:
    return read_legacy_register(read_rows(path), name=path.name)


# importing


def import_legacy_file(
    register: Register,
    legacy: LegacyFile,
    skip_invalid: bool = False,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: PhasedProgress | None = None,
) -> ImportSummary:
    """Runs the import in this process, straight against the event store, as the ingest role would."""
    processor = CommandProcessor(register)
    importer = LegacyImport(processor, sent_at=datetime.now(UTC), batch_size=batch_size, progress=progress)
    return importer.run(legacy, skip_invalid=skip_invalid, dry_run=dry_run)


def print_summary(summary: ImportSummary, out: TextIO, skip_invalid: bool) -> None:
    totals = summary.totals()
    verb = "would be" if summary.dry_run else "were"
    print(f"{summary.file}: {totals['rows']} rows", file=out)
    for name in ("created", "changed", "unchanged", "rejected"):
        print(f"  {name:<10} {totals[name]:>6}", file=out)
    skipped = " (skipped)" if skip_invalid or summary.dry_run else ""
    print(f"  {'invalid':<10} {totals['invalid']:>6}{skipped}", file=out)
    commands = summary.commands
    if summary.dry_run:
        print(f"commands that would be sent: {commands.get('planned', 0)}", file=out)
    elif summary.recorded:
        print(
            f"commands: {commands['sent']} sent, {commands['accepted']} accepted, {commands['rejected']} "
            f"rejected ({commands['duplicates']} sent before)",
            file=out,
        )
    if summary.institutions_registered:
        registered = summary.institutions_registered
        print(f"institutions that {verb} registered: {len(registered)} ({_some(registered)})", file=out)
    if summary.institutions_unregistered:
        unregistered = summary.institutions_unregistered
        print(
            f"institutions not registered: {len(unregistered)} ({_some(unregistered)}); the file gives no "
            "province, postcode or region: send institution.register for them",
            file=out,
        )
    if summary.ignored_columns:
        print(f"columns ignored: {', '.join(summary.ignored_columns)}", file=out)
    if summary.problems:
        print(f"\nproblems ({len(summary.problems)}):", file=out)
        for problem in summary.problems:
            print(f"  {problem}", file=out)
    refusals = summary.refusals
    if refusals:
        print(f"\nrefused ({len(refusals)}):", file=out)
        for refusal in refusals:
            where = (
                f"row {refusal.row} ({refusal.institution} {refusal.label})"
                if refusal.row
                else (f"institution {refusal.institution}")
            )
            again = " [refused before]" if refusal.earlier else ""
            print(f"  {where}, {refusal.step}: {refusal.code}: {refusal.message}{again}", file=out)
    if summary.problems and not summary.recorded and not summary.dry_run:
        print(
            f"\nnothing was recorded: {summary.invalid or 'the file'} row(s) have problems"
            if summary.invalid
            else "\nnothing was recorded: the file cannot be read as a legacy register",
            file=out,
        )
        if summary.invalid:
            print("fix them, or use --skip-invalid to record only the valid rows", file=out)


def _some(names: Sequence[str], shown: int = 10) -> str:
    more = f", ... {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def cmd_legacy_import(args: argparse.Namespace) -> int:
    settings = settings_or_exit()
    try:
        legacy = read_legacy_file(Path(args.file))
    except UnreadableFile as error:
        print(f"kadaster: {error}", file=sys.stderr)
        return 2
    if not legacy.readable or (legacy.problems and not args.skip_invalid and not args.dry_run):
        # The whole file is checked before anything is recorded; the register is not even opened.
        summary = ImportSummary(
            file=legacy.name,
            rows=legacy.rows,
            problems=legacy.problems,
            ignored_columns=legacy.ignored_columns,
        )
        _report(args, summary)
        return 2 if not legacy.readable else 1
    register = open_register(settings)
    progress = PhasedProgress(enabled=False if args.json else None)
    try:
        summary = import_legacy_file(
            register,
            legacy,
            skip_invalid=args.skip_invalid,
            dry_run=args.dry_run,
            batch_size=args.batch_size,
            progress=progress,
        )
    except EventSourcingError as error:
        # Batches already committed stay; their command ids make running the import again finish it.
        print(
            f"\nkadaster: the import stopped: {type(error).__name__}: {error}. What was recorded stays; "
            "run the same import again to finish it.",
            file=sys.stderr,
        )
        return 3
    finally:
        progress.close()
        register.close()
    _report(args, summary)
    # A dry run of a file with problems would record nothing either.
    unrecordable = args.dry_run and summary.problems and not args.skip_invalid
    return 1 if summary.refusals or unrecordable else 0


def _report(args: argparse.Namespace, summary: ImportSummary) -> None:
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2, ensure_ascii=False))
    else:
        print_summary(summary, sys.stdout, args.skip_invalid)


# the letters


def write_letters(lines: Sequence[LetterLine], out: Path, force: bool = False) -> dict[str, int]:
    """Per institution, `<recognition number>.csv` and `.xlsx` listing its devices and their MID-IDs.

    Files are created 0600 in a folder created 0700; an existing letter is replaced only with `force`.
    """
    private_directory(out)
    by_institution: dict[str, list[LetterLine]] = {}
    for line in lines:
        by_institution.setdefault(line.institution, []).append(line)
    for institution, devices in by_institution.items():
        header = [title for _, title in LETTER_COLUMNS]
        rows = [[getattr(line, name) for name, _ in LETTER_COLUMNS] for line in devices]
        for path in (out / f"{institution}.csv", out / f"{institution}.xlsx"):
            check_output(path, force)
        with written(out / f"{institution}.csv", force) as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows([[csv_text(str(value)) for value in row] for row in rows])
        with written(out / f"{institution}.xlsx", force, binary=True) as handle:
            _write_letter_xlsx(handle, institution, header, rows)
    return {institution: len(devices) for institution, devices in by_institution.items()}


def _write_letter_xlsx(path: IO[bytes], institution: str, header: list[str], rows: list[list[str]]) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = institution[:31]
    sheet.append(header)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append(row)
        as_text_cells(sheet[sheet.max_row])
    for index, title in enumerate(header):
        width = max([len(title), *(len(str(row[index])) for row in rows)]) + 2
        sheet.column_dimensions[chr(ord("A") + index)].width = min(width, 60)
    sheet.freeze_panes = "A2"
    workbook.save(path)


def cmd_legacy_letters(args: argparse.Namespace) -> int:
    register = open_register(settings_or_exit())
    try:
        lines = legacy_letters(register)
    finally:
        register.close()
    if args.institution:
        lines = [line for line in lines if line.institution == args.institution]
    out = Path(args.out)
    try:
        letters = write_letters(lines, out, force=args.force)
    except OutputRefused as error:
        print(f"kadaster: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"out": str(out), "institutions": letters, "devices": len(lines)}, indent=2))
    else:
        print(f"{len(letters)} letter(s), {len(lines)} device(s), written to {out} (CSV and XLSX each)")
    return 0
