"""Reading the legacy kadaster register's sheet: its header, each cell in Dutch, French or English."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from adapters.files.legacy_columns import COLUMNS
from domain.billing import normalise_billing_number
from domain.fanc import normalise_legacy_number
from domain.identifiers import PARTY_PATTERN, Modality
from domain.reference import (
    PROVINCES,
    modality_named,
    province_named,
    province_of_postcode,
    region_named,
    region_of,
    vocabulary_key,
)
from services.legacy.checks import FileChecks, row_findings
from services.legacy.rows import LEGACY_CUTOFF, LegacyDevice, LegacyFile, Problem

MAX_TEXT = 200
MAX_NUMBER = 64
HEADER_SEARCH_ROWS = 20
_PARTY = re.compile(PARTY_PATTERN)
_DAY_FIRST = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$")
_YEAR_FIRST = re.compile(r"^(\d{4})[/.-](\d{1,2})[/.-](\d{1,2})(?:[ T]00:00(?::00(?:\.0+)?)?)?$")
_EXCEL_EPOCH = date(1899, 12, 30)
_PLAUSIBLE_YEARS = range(1970, 2101)


# the columns

COLUMN_BY_FIELD = {column.field: column for column in COLUMNS}
_ALIASES = {
    vocabulary_key(alias): column.field for column in COLUMNS for alias in (*column.aliases, column.field)
}

# the vocabularies

_USE_WORDS = {
    vocabulary_key(word): use
    for use, words in {
        "clinical": ("klinisch", "clinical", "clinique", "diagnostisch"),
        "research": ("onderzoek", "wetenschappelijk onderzoek", "research", "recherche"),
        "mixed": (
            "gemengd",
            "mixed",
            "mixte",
            "klinisch en onderzoek",
            "klinisch + onderzoek",
            "klinisch/onderzoek",
            "clinical and research",
            "clinical/research",
        ),
    }.items()
    for word in words
}
_STATUS_WORDS = {
    vocabulary_key(word): out_of_service
    for out_of_service, words in {
        False: (
            "in gebruik",
            "in dienst",
            "actief",
            "operationeel",
            "in service",
            "in use",
            "active",
            "operational",
            "en service",
            "en fonction",
            "actif",
        ),
        True: (
            "buiten gebruik",
            "buiten dienst",
            "uit dienst",
            "niet meer in gebruik",
            "inactief",
            "decommissioned",
            "out of service",
            "retired",
            "inactive",
            "hors service",
            "hors d'usage",
            "déclassé",
        ),
    }.items()
    for word in words
}


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _text(value: Any) -> str | None:
    """A cell as text: numbers lose a spurious `.0`, runs of whitespace (Excel's too) become one space."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, datetime):
        value = value.date() if value.time() == datetime.min.time() else value
    if isinstance(value, date):
        return value.isoformat()
    text = " ".join(_shown(value).split())
    return text or None


class _RowReader:
    """Reads one row's cells into values, noting each problem with its column and value."""

    def __init__(self, number: int, cells: Sequence[Any], columns: dict[str, tuple[int, str]]) -> None:
        self.number = number
        self.cells = cells
        self.columns = columns
        self.problems: list[Problem] = []

    def raw(self, name: str) -> Any:
        where = self.columns.get(name)
        if where is None or where[0] >= len(self.cells):
            return None
        value = self.cells[where[0]]
        return None if isinstance(value, str) and not value.strip() else value

    def problem(self, name: str, reason: str, code: str = "schema", value: Any = None) -> None:
        header = self.columns.get(name, (0, COLUMN_BY_FIELD[name].title))[1]
        shown = _shown(self.raw(name) if value is None else value)
        self.problems.append(Problem(self.number, header, shown, reason, code))

    def text(self, name: str, limit: int = MAX_TEXT) -> str | None:
        value = _text(self.raw(name))
        if value is None:
            if COLUMN_BY_FIELD[name].required:
                self.problem(name, f"the {COLUMN_BY_FIELD[name].title} is missing")
            return None
        if len(value) > limit:
            self.problem(name, f"longer than {limit} characters")
            return None
        return value

    def institution(self) -> str | None:
        value = self.text("institution", MAX_NUMBER)
        if value is None:
            return None
        compact = "".join(value.split())
        if not _PARTY.fullmatch(compact):
            self.problem("institution", "a recognition number has only letters, digits, '-' and '_'")
            return None
        return compact

    def label(self) -> str | None:
        value = self.text("label")
        return None if value is None else value.upper()

    def modality(self) -> str | None:
        value = self.text("modality")
        if value is None:
            return None
        found = modality_named(value)
        if found is None:
            in_scope = ", ".join(m.value for m in Modality)
            self.problem(
                "modality",
                f"not a heavy imaging modality of the kadaster (in scope: {in_scope})",
                "modality_not_in_scope",
            )
            return None
        return found.value

    def use(self) -> str | None:
        value = self.text("use")
        if value is None:
            return None
        found = _USE_WORDS.get(vocabulary_key(value))
        if found is None:
            self.problem("use", "use is klinisch/clinical, onderzoek/research or gemengd/mixed")
        return found

    def out_of_service(self) -> bool | None:
        value = self.text("status")
        if value is None:
            return None
        found = _STATUS_WORDS.get(vocabulary_key(value))
        if found is None:
            self.problem("status", "status is 'in gebruik'/'in service' or 'buiten gebruik'/'decommissioned'")
        return found

    def date(self, name: str) -> date | None:
        value = self.raw(name)
        if value is None:
            if COLUMN_BY_FIELD[name].required:
                self.problem(name, f"the {COLUMN_BY_FIELD[name].title} is missing")
            return None
        try:
            day = _parse_date(value)
        except ValueError as error:
            self.problem(name, str(error))
            return None
        if day.year not in _PLAUSIBLE_YEARS:
            self.problem(name, f"{day.isoformat()} is not a plausible date for a kadaster device")
            return None
        return day

    def official_number(self, name: str, normalise: Callable[[str], str]) -> str | None:
        value = self.text(name, MAX_NUMBER)
        return None if value is None else normalise(value)

    def province(self) -> tuple[str | None, str | None]:
        """The province and its region, from the province column, else from the postcode."""
        value = self.text("province")
        if value is not None:
            province = province_named(value)
            if province is None:
                self.problem("province", f"not a Belgian province ({', '.join(PROVINCES)})")
                return None, None
            return province, region_of(province)
        postcode = self.text("postcode", 16)
        if postcode is None:
            return None, None
        province = province_of_postcode(postcode)
        if province is None:
            self.problem("postcode", "not a Belgian postcode (4 digits, 1000-9999)")
            return None, None
        return province, region_of(province)

    def region(self, from_province: str | None) -> str | None:
        value = self.text("region")
        if value is None:
            return from_province
        region = region_named(value)
        if region is None:
            self.problem("region", "region is flemish/Vlaanderen, brussels/Brussel or wallonia/Wallonië")
            return None
        if from_province is not None and region != from_province:
            self.problem("region", f"the province lies in the {from_province} region, not in {region}")
            return None
        return region


def _parse_date(value: Any) -> date:
    """dd/mm/yyyy, d/m/yyyy, dd-mm-yyyy, dd.mm.yyyy (Belgian: day first), yyyy-mm-dd, or an Excel date."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        # A date cell that lost its date format still holds Excel's serial day number.
        if value != int(value) or not 1 <= value <= 2_958_465:
            raise ValueError("not a date (use dd/mm/yyyy or yyyy-mm-dd)")
        return _EXCEL_EPOCH + timedelta(days=int(value))
    text = str(value).strip()
    found = _DAY_FIRST.fullmatch(text)
    if found:
        day, month, year = (int(part) for part in found.groups())
    else:
        found = _YEAR_FIRST.fullmatch(text)
        if not found:
            raise ValueError("not a date (use dd/mm/yyyy or yyyy-mm-dd)")
        year, month, day = (int(part) for part in found.groups())
    try:
        return date(year, month, day)
    except ValueError:
        raise ValueError(f"no such day (day {day}, month {month}, year {year})") from None


Header = tuple[int, dict[str, tuple[int, str]], list[str]]
"""The header row's number, field → (column index, header as written), and the headers not understood."""


def _header(rows: Sequence[tuple[int, Sequence[Any]]]) -> Header | None:
    """The first row naming at least three known columns."""
    for number, cells in rows[:HEADER_SEARCH_ROWS]:
        named = [(index, _text(cell)) for index, cell in enumerate(cells)]
        known = [(index, text, _ALIASES.get(vocabulary_key(text))) for index, text in named if text]
        if sum(1 for _, _, name in known if name) >= 3:
            columns: dict[str, tuple[int, str]] = {}
            for index, text, name in known:
                if name is not None and name not in columns:
                    columns[name] = (index, text)
            return number, columns, [text for _, text, name in known if name is None]
    return None


def read_legacy_register(rows: Sequence[tuple[int, Sequence[Any]]], name: str = "register") -> LegacyFile:
    """Checks a whole legacy register (rows with their sheet row numbers); nothing is recorded here.

    Every problem is listed with its row, column, value and reason. Rows on which one of several
    devices claims a label, serial number, FANC number or billing number already claimed on an
    earlier row are the ones reported, naming the earlier row.
    """
    legacy = LegacyFile(name=name)
    found = _header(rows)
    if found is None:
        expected = ", ".join(c.aliases[0] for c in COLUMNS if c.required)
        legacy.problems.append(
            Problem(1, "header", "", f"no header row naming the columns (expected e.g. {expected})", "file")
        )
        return legacy
    header_row, columns, legacy.ignored_columns = found
    duplicates = _repeated_headers(rows, header_row)
    for title in duplicates:
        legacy.problems.append(Problem(header_row, title, title, "two columns mean the same thing", "file"))
    for column in COLUMNS:
        if column.required and column.field not in columns:
            names = ", ".join(column.aliases[:3])
            legacy.problems.append(
                Problem(
                    header_row, column.title, "", f"the file has no {column.title} column ({names})", "file"
                )
            )
    if not legacy.readable:
        return legacy
    checks = FileChecks()
    for number, cells in rows:
        if number <= header_row or all(_text(cell) is None for cell in cells):
            continue
        legacy.rows += 1
        reader = _RowReader(number, cells, columns)
        device = _read_device(reader)
        if device is not None:
            for name, reason, code in checks.check(device):
                reader.problem(name, reason, code)
        legacy.problems.extend(reader.problems)
        if device is not None and not reader.problems:
            legacy.devices.append(device)
    return legacy


def _repeated_headers(rows: Sequence[tuple[int, Sequence[Any]]], header_row: int) -> list[str]:
    cells = next(cells for number, cells in rows if number == header_row)
    seen: dict[str, str] = {}
    repeated = []
    for cell in cells:
        text = _text(cell)
        name = _ALIASES.get(vocabulary_key(text)) if text else None
        if name is None or text is None:
            continue
        if name in seen:
            repeated.append(text)
        seen[name] = text
    return repeated


def _read_device(reader: _RowReader) -> LegacyDevice | None:
    institution = reader.institution()
    label = reader.label()
    modality = reader.modality()
    manufacturer = reader.text("manufacturer")
    model = reader.text("model")
    serial_number = reader.text("serial_number")
    campus = reader.text("campus")
    installed_on = reader.date("installed_on")
    use = reader.use()
    fanc_number = reader.official_number("fanc_number", normalise_legacy_number)
    billing_number = reader.official_number("billing_number", normalise_billing_number)
    out_of_service = reader.out_of_service()
    decommissioned_on = reader.date("decommissioned_on")
    registered_on = reader.date("registered_on")
    name = reader.text("name")
    province, region_of_province = reader.province()
    region = reader.region(region_of_province)
    for name, reason, code in row_findings(
        modality=modality,
        use=use,
        fanc_number=fanc_number,
        billing_number=billing_number,
        out_of_service=out_of_service,
        installed_on=installed_on,
        decommissioned_on=decommissioned_on,
        registered_on=registered_on,
    ):
        reader.problem(name, reason, code)
    if decommissioned_on is not None:
        out_of_service = True
    if reader.problems:
        return None
    assert institution and label and modality and manufacturer and model and serial_number and campus
    assert installed_on is not None and use is not None
    return LegacyDevice(
        row=reader.number,
        institution=institution,
        label=label,
        modality=modality,
        manufacturer=manufacturer,
        model=model,
        serial_number=serial_number,
        campus=campus,
        installed_on=installed_on,
        use=use,
        fanc_number=fanc_number,
        billing_number=billing_number,
        out_of_service=bool(out_of_service),
        decommissioned_on=decommissioned_on,
        registered_on=registered_on or min(installed_on, LEGACY_CUTOFF),
        name=name,
        province=province,
        region=region,
    )
