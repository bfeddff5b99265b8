"""The parsers of `kadaster legacy`: importing the legacy register, writing the hospitals' letters."""

from __future__ import annotations

import argparse
import textwrap

from adapters.files.legacy_columns import COLUMNS
from services.legacy import DEFAULT_BATCH_SIZE

IMPORT_DESCRIPTION = """\
Checks the whole file first and lists every problem (row, column, value, reason); nothing is recorded
from a file with problems unless --skip-invalid. Each row then goes in through the live commands:
institution.register (institutions the register does not know), midid.backfill (which issues and links
the MID-ID, with the old FANC number), fanc.licence (the FANC number as licence, valid from the
installation date), billing.assign, device.decommission; for a device already imported, device.correct
with only the fields that changed, and fanc.legacy-number for an old FANC number the register did not
have. Importing the same file again records nothing. The import adds and corrects; it never removes
(a row left out, an emptied FANC or billing number change nothing).

Defaults: the institution's name is its recognition number when the file has no name column; its
province and region come from a province, postcode or region column, and without any of them the
institution is not registered (the summary lists it). A device is registered on its installation
date (or a registratiedatum column), before 2022-10-01 so the FANC transition applies. An
out-of-service device is decommissioned on its 'buiten gebruik sinds' date, else on 2022-09-30,
and gets no licence or billing number (both ended with it).

{columns}

Dates: dd/mm/yyyy as Belgian spreadsheets write them, day first (also d/m/yyyy, dd-mm-yyyy and
dd.mm.yyyy; the year in four digits), ISO yyyy-mm-dd, or Excel date cells.
Modality: CT, MRI (MR, NMR, IRM), PET, PET-CT, PET-MRI, SPECT-CT. Use: klinisch/clinical,
onderzoek/research or gemengd/mixed. Status: in gebruik/in service or buiten gebruik/decommissioned.

Exit status: 0 recorded; 1 problems in the file (nothing recorded) or a command refused; 2 file
unreadable; 3 the event store failed midway (run the import again to finish).
"""


def column_help(width: int = 100) -> str:
    """Every column the import reads, with each name it goes by, in Dutch, English and French."""
    lines = [
        "Columns, by any of these names (Dutch, English or French; case, accents, spacing and",
        "punctuation do not matter); other columns are ignored, and the summary names them:",
    ]
    indent = " " * 26
    for required in (True, False):
        lines.append("  required" if required else "  optional")
        for column in COLUMNS:
            if column.required != required:
                continue
            names = textwrap.wrap(
                ", ".join(column.aliases),
                width,
                initial_indent=f"    {column.title:<22}",
                subsequent_indent=indent,
                break_on_hyphens=False,
            )
            lines.extend(names)
    return "\n".join(lines)


def legacy(p: argparse.ArgumentParser) -> None:
    p.description = (
        "The kadaster as it stood before the MID-ID (1 October 2022): import it, giving every "
        "device its MID-ID (a backfill), and tell each hospital which MID-ID each device received. Reads and "
        "writes the event store directly (KADASTER_DATABASE_URL or the data dir); no running service needed."
    )


def importing(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.description = IMPORT_DESCRIPTION.format(columns=column_help())
    p.add_argument("file", help="the register (.csv with ; or , or .xlsx, first sheet)")
    p.add_argument("--skip-invalid", action="store_true", help="record the valid rows only")
    p.add_argument("--dry-run", action="store_true", help="check and plan only; record nothing")
    p.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help=f"commands per transaction (default {DEFAULT_BATCH_SIZE})",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def letters(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Per institution, <recognition number>.csv and .xlsx: label, modality, manufacturer, "
        "model, serial number, campus, MID-ID and status of every backfilled device, as the register says "
        "now."
    )
    p.add_argument("--out", required=True, help="directory to write the letters to")
    p.add_argument("--institution", help="only this institution's letter")
    p.add_argument("--force", action="store_true", help="replace letters already in the folder")
    p.add_argument("--json", action="store_true", help="print what was written as JSON")
