"""The legacy kadaster register: check the whole file, then record it through the live commands."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.utils import get_topic

from domain.billing import normalise_billing_number
from domain.device import STATEMENT_FIELDS, Device, device_id
from domain.fanc import MIDID_IN_FORCE, normalise_legacy_number
from domain.identifiers import FOD, Modality
from domain.institution import institution_id
from domain.mid_id import LegacyRef
from services.processor import CommandProcessor, Inbound
from services.register import Register

IMPORT_CHANNEL = "import"
DEFAULT_BATCH_SIZE = 500
LEGACY_CUTOFF = MIDID_IN_FORCE - timedelta(days=1)
"""The last day of the legacy register: what it lists was registered, and what it says is out of service
was out of service, by then at the latest."""

MAX_TEXT = 200
MAX_NUMBER = 64
HEADER_SEARCH_ROWS = 20
_PARTY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_DAY_FIRST = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$")
_YEAR_FIRST = re.compile(r"^(\d{4})[/.-](\d{1,2})[/.-](\d{1,2})(?:[ T]00:00(?::00(?:\.0+)?)?)?$")
_EXCEL_EPOCH = date(1899, 12, 30)
_PLAUSIBLE_YEARS = range(1970, 2101)


def _key(text: str) -> str:
    """Header and vocabulary matching ignores case, accents, spacing and punctuation."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isalnum() and not unicodedata.combining(c)).casefold()


# the columns


@dataclass(frozen=True)
class Column:
    field: str
    title: str
    required: bool
    aliases: tuple[str, ...]


COLUMNS = (
    Column(
        "institution",
        "recognition number",
        True,
        (
            "erkenningsnummer",
            "erkenningsnr",
            "erkenning",
            "instelling",
            "instellingsnummer",
            "erkend nummer",
            "recognition number",
            "institution",
            "institution id",
            "numéro d'agrément",
            "agrément",
            "établissement",
        ),
    ),
    Column(
        "name",
        "institution name",
        False,
        (
            "naam",
            "naam instelling",
            "instellingsnaam",
            "naam ziekenhuis",
            "ziekenhuisnaam",
            "name",
            "institution name",
            "hospital name",
            "nom",
            "nom de l'établissement",
            "nom de l'hôpital",
        ),
    ),
    Column("province", "province", False, ("provincie", "province")),
    Column("region", "region", False, ("gewest", "regio", "region", "région")),
    Column("postcode", "postcode", False, ("postcode", "postnummer", "code postal", "zip", "zip code")),
    Column(
        "label",
        "device label",
        True,
        (
            "toestel",
            "label",
            "toestellabel",
            "toestelnummer",
            "toestelcode",
            "volgnummer",
            "device",
            "device label",
            "device reference",
            "legacy ref",
            "appareil",
            "référence",
        ),
    ),
    Column(
        "modality",
        "modality",
        True,
        (
            "modaliteit",
            "modality",
            "modalité",
            "type toestel",
            "soort toestel",
            "device type",
        ),
    ),
    Column(
        "manufacturer",
        "manufacturer",
        True,
        (
            "fabrikant",
            "producent",
            "merk",
            "manufacturer",
            "vendor",
            "make",
            "fabricant",
            "constructeur",
            "marque",
        ),
    ),
    Column("model", "model", True, ("model", "modèle", "type model", "toesteltype")),
    Column(
        "serial_number",
        "serial number",
        True,
        (
            "serienummer",
            "serienr",
            "serial",
            "serial number",
            "serial no",
            "sn",
            "numéro de série",
        ),
    ),
    Column(
        "campus",
        "campus",
        True,
        (
            "campus",
            "vestiging",
            "vestigingsplaats",
            "locatie",
            "site",
            "location",
            "implantation",
        ),
    ),
    Column(
        "installed_on",
        "installation date",
        True,
        (
            "installatiedatum",
            "datum installatie",
            "geïnstalleerd op",
            "datum indienststelling",
            "installation date",
            "installed on",
            "date of installation",
            "date d'installation",
        ),
    ),
    Column("use", "use", True, ("gebruik", "gebruiksdoel", "aard gebruik", "use", "usage", "utilisation")),
    Column(
        "fanc_number",
        "FANC number",
        False,
        (
            "fanc-nummer",
            "fanc nummer",
            "fanc nr",
            "fanc",
            "uniek fanc-nummer",
            "oud fanc-nummer",
            "fanc number",
            "fanc unique number",
            "legacy number",
            "numéro afcn",
            "numéro unique afcn",
            "afcn",
        ),
    ),
    Column(
        "billing_number",
        "billing number",
        False,
        (
            "facturatienummer",
            "factuurnummer",
            "riziv-nummer",
            "riziv facturatienummer",
            "billing number",
            "billing",
            "numéro de facturation",
            "numéro inami",
            "inami",
        ),
    ),
    Column("status", "status", False, ("status", "toestand", "staat", "state", "statut")),
    Column(
        "decommissioned_on",
        "out of service since",
        False,
        (
            "buiten gebruik sinds",
            "buiten gebruik op",
            "uit dienst op",
            "uit dienst sinds",
            "datum buiten gebruik",
            "decommissioned on",
            "decommissioning date",
            "out of service since",
            "hors service depuis",
        ),
    ),
    Column(
        "registered_on",
        "registration date",
        False,
        (
            "registratiedatum",
            "geregistreerd op",
            "datum registratie",
            "registered on",
            "registration date",
            "date d'enregistrement",
        ),
    ),
)
COLUMN_BY_FIELD = {column.field: column for column in COLUMNS}
_ALIASES = {_key(alias): column.field for column in COLUMNS for alias in (*column.aliases, column.field)}

# the vocabularies

_MODALITY_WORDS = {
    **{_key(m.value): m for m in Modality},
    "mr": Modality.MRI,
    "nmr": Modality.MRI,
    "mri": Modality.MRI,
    "irm": Modality.MRI,
    "ctscan": Modality.CT,
    "ctscanner": Modality.CT,
    "scanner": Modality.CT,
    "petscan": Modality.PET,
    "petmr": Modality.PET_MRI,
}
_USE_WORDS = {
    _key(word): use
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
    _key(word): out_of_service
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
PROVINCES = {
    "Antwerpen": ("flemish", ("antwerpen", "antwerp", "anvers")),
    "Limburg": ("flemish", ("limburg", "limbourg")),
    "Oost-Vlaanderen": ("flemish", ("oost-vlaanderen", "east flanders", "flandre orientale")),
    "West-Vlaanderen": ("flemish", ("west-vlaanderen", "west flanders", "flandre occidentale")),
    "Vlaams-Brabant": ("flemish", ("vlaams-brabant", "flemish brabant", "brabant flamand")),
    "Brussel": (
        "brussels",
        (
            "brussel",
            "brussels",
            "bruxelles",
            "brussels hoofdstedelijk gewest",
            "brussels-capital region",
            "région de bruxelles-capitale",
        ),
    ),
    "Henegouwen": ("wallonia", ("henegouwen", "hainaut")),
    "Luik": ("wallonia", ("luik", "liège", "liege")),
    "Luxemburg": ("wallonia", ("luxemburg", "luxembourg")),
    "Namen": ("wallonia", ("namen", "namur")),
    "Waals-Brabant": ("wallonia", ("waals-brabant", "walloon brabant", "brabant wallon")),
}
_PROVINCE_WORDS = {_key(word): name for name, (_, words) in PROVINCES.items() for word in (name, *words)}
_REGION_WORDS = {
    _key(word): region
    for region, words in {
        "flemish": ("flemish", "vlaanderen", "vlaams gewest", "vlaams", "flanders", "flandre", "flamand"),
        "brussels": (
            "brussels",
            "brussel",
            "bruxelles",
            "brussels-capital",
            "brussels hoofdstedelijk gewest",
        ),
        "wallonia": ("wallonia", "wallonie", "wallonië", "waals gewest", "waals", "walloon", "wallon"),
    }.items()
    for word in words
}
_POSTCODE_PROVINCES = (
    (1000, 1299, "Brussel"),
    (1300, 1499, "Waals-Brabant"),
    (1500, 1999, "Vlaams-Brabant"),
    (2000, 2999, "Antwerpen"),
    (3000, 3499, "Vlaams-Brabant"),
    (3500, 3999, "Limburg"),
    (4000, 4999, "Luik"),
    (5000, 5999, "Namen"),
    (6000, 6599, "Henegouwen"),
    (6600, 6999, "Luxemburg"),
    (7000, 7999, "Henegouwen"),
    (8000, 8999, "West-Vlaanderen"),
    (9000, 9999, "Oost-Vlaanderen"),
)
UNKNOWN_PROVINCE = "onbekend"


# what the file says


@dataclass(frozen=True)
class Problem:
    """One reason a row (or the file) cannot be recorded as it stands."""

    row: int
    column: str
    value: str
    reason: str
    code: str = "schema"

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "column": self.column,
            "value": self.value,
            "reason": self.reason,
            "code": self.code,
        }

    def __str__(self) -> str:
        shown = f" {self.value!r}" if self.value else ""
        return f"row {self.row}, {self.column}{shown}: {self.reason}"


@dataclass(frozen=True)
class LegacyDevice:
    """One valid row: a device the kadaster knew before MID-IDs existed."""

    row: int
    institution: str
    label: str
    modality: str
    manufacturer: str
    model: str
    serial_number: str
    campus: str
    installed_on: date
    use: str
    fanc_number: str | None
    billing_number: str | None
    out_of_service: bool
    decommissioned_on: date | None
    registered_on: date
    name: str | None = None
    province: str | None = None
    region: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.institution, self.label)

    def statement(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in STATEMENT_FIELDS}


@dataclass(frozen=True)
class InstitutionFacts:
    institution: str
    name: str
    province: str | None
    region: str | None
    campuses: tuple[str, ...]


@dataclass
class LegacyFile:
    """The whole file, checked: valid rows, and every problem found."""

    name: str
    rows: int = 0
    devices: list[LegacyDevice] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def readable(self) -> bool:
        """False when the file as a whole cannot be read (no header, a required column missing)."""
        return not any(p.code == "file" for p in self.problems)

    def institutions(self) -> dict[str, InstitutionFacts]:
        """What the valid rows say about each institution: the first row giving a fact counts."""
        stated: dict[str, dict[str, Any]] = {}
        for device in self.devices:
            facts = stated.setdefault(device.institution, {"campuses": set()})
            facts["campuses"].add(device.campus)
            for name in ("name", "province", "region"):
                if facts.get(name) is None:
                    facts[name] = getattr(device, name)
        return {
            institution: InstitutionFacts(
                institution=institution,
                name=facts["name"] or institution,
                province=facts["province"],
                region=facts["region"],
                campuses=tuple(sorted(facts["campuses"])),
            )
            for institution, facts in stated.items()
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
        if not _PARTY.match(compact):
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
        found = _MODALITY_WORDS.get(_key(value))
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
        found = _USE_WORDS.get(_key(value))
        if found is None:
            self.problem("use", "use is klinisch/clinical, onderzoek/research or gemengd/mixed")
        return found

    def out_of_service(self) -> bool | None:
        value = self.text("status")
        if value is None:
            return None
        found = _STATUS_WORDS.get(_key(value))
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
            province = _PROVINCE_WORDS.get(_key(value))
            if province is None:
                self.problem("province", f"not a Belgian province ({', '.join(PROVINCES)})")
                return None, None
            return province, PROVINCES[province][0]
        postcode = self.text("postcode", 16)
        if postcode is None:
            return None, None
        for low, high, province in _POSTCODE_PROVINCES:
            if postcode.isdigit() and low <= int(postcode) <= high:
                return province, PROVINCES[province][0]
        self.problem("postcode", "not a Belgian postcode (4 digits, 1000-9999)")
        return None, None

    def region(self, from_province: str | None) -> str | None:
        value = self.text("region")
        if value is None:
            return from_province
        region = _REGION_WORDS.get(_key(value))
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
    found = _DAY_FIRST.match(text)
    if found:
        day, month, year = (int(part) for part in found.groups())
    else:
        found = _YEAR_FIRST.match(text)
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
        known = [(index, text, _ALIASES.get(_key(text))) for index, text in named if text]
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
    checks = _FileChecks()
    for number, cells in rows:
        if number <= header_row or all(_text(cell) is None for cell in cells):
            continue
        legacy.rows += 1
        reader = _RowReader(number, cells, columns)
        device = _read_device(reader)
        if device is not None:
            checks.check(device, reader)
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
        name = _ALIASES.get(_key(text)) if text else None
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
    if modality == Modality.MRI.value and fanc_number is not None:
        reader.problem(
            "fanc_number", "an MRI emits no ionising radiation: it has no FANC number", "not_in_fanc_scope"
        )
    if use == "research" and billing_number is not None:
        reader.problem(
            "billing_number",
            "a research-only device gets no billing number (only clinical or mixed use)",
            "requirements_not_met",
        )
    if decommissioned_on is not None:
        if out_of_service is False:
            reader.problem("decommissioned_on", "the status says the device is still in service")
        out_of_service = True
        if installed_on is not None and decommissioned_on < installed_on:
            reader.problem("decommissioned_on", f"before the installation date {installed_on.isoformat()}")
    if registered_on is not None and registered_on >= MIDID_IN_FORCE:
        reader.problem(
            "registered_on",
            f"registered on or after {MIDID_IN_FORCE.isoformat()}: such a device gets its MID-ID from its "
            "hospital (midid.issue), not from the backfill",
        )
    if registered_on is None and installed_on is not None and installed_on >= MIDID_IN_FORCE:
        reader.problem(
            "installed_on",
            f"installed on or after {MIDID_IN_FORCE.isoformat()} with no earlier registration date: such a "
            "device gets its MID-ID from its hospital (midid.issue), not from the backfill",
        )
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


def _plate(serial_number: str) -> str:
    return "".join(c for c in serial_number.upper() if c.isalnum())


class _FileChecks:
    """What no single row shows: one row per label, serial number, FANC number, billing number."""

    def __init__(self) -> None:
        self.labels: dict[tuple[str, str], int] = {}
        self.serials: dict[tuple[str, str], int] = {}
        self.fanc_numbers: dict[str, int] = {}
        self.billing_numbers: dict[str, int] = {}
        self.institutions: dict[str, dict[str, tuple[str, int]]] = {}

    def check(self, device: LegacyDevice, reader: _RowReader) -> None:
        earlier = self.labels.setdefault(device.key, device.row)
        if earlier != device.row:
            reader.problem(
                "label",
                f"label {device.label} of {device.institution} is already used on row {earlier}",
                "conflict",
            )
        # Serial numbers are typed off type plates with varying separators; two makers may share one.
        serial = (_key(device.manufacturer), _plate(device.serial_number))
        earlier = self.serials.setdefault(serial, device.row)
        if earlier != device.row:
            reader.problem(
                "serial_number",
                f"{device.manufacturer} serial number {device.serial_number} is already on row {earlier}",
                "conflict",
            )
        if device.fanc_number is not None:
            earlier = self.fanc_numbers.setdefault(device.fanc_number, device.row)
            if earlier != device.row:
                reader.problem("fanc_number", f"FANC number already given to row {earlier}", "conflict")
        # A billing number sits on one device at a time; a retired device's number is not recorded.
        if device.billing_number is not None and not device.out_of_service:
            earlier = self.billing_numbers.setdefault(device.billing_number, device.row)
            if earlier != device.row:
                reader.problem(
                    "billing_number",
                    f"billing number already on the device in service of row {earlier}",
                    "conflict",
                )
        stated = self.institutions.setdefault(device.institution, {})
        for name in ("name", "province", "region"):
            value = getattr(device, name)
            if value is None:
                continue
            first = stated.setdefault(name, (value, device.row))
            if first[0] != value:
                reader.problem(
                    name, f"row {first[1]} gives {device.institution} the {name} {first[0]!r}", "conflict"
                )


# what the register says


@dataclass(frozen=True)
class DeviceState:
    """What the register says about a backfilled device, as far as the legacy file can speak of it."""

    mid_id: str
    modality: str
    record: dict[str, Any]
    legacy_number: str | None
    licences: frozenset[str]
    billing_number: str | None
    decommissioned: bool

    @classmethod
    def of(cls, device: Device) -> DeviceState:
        return cls(
            mid_id=device.mid_id,
            modality=device.modality,
            record={name: device.record.get(name) for name in STATEMENT_FIELDS},
            legacy_number=device.legacy_number,
            licences=frozenset(device.licences),
            billing_number=device.billing_number,
            decommissioned=device.decommissioned,
        )

    @classmethod
    def after_backfill(cls, device: LegacyDevice, mid_id: str) -> DeviceState:
        """What `midid.backfill` records from the row, so the import need not read it back."""
        return cls(
            mid_id=mid_id,
            modality=device.modality,
            record=device.statement(),
            legacy_number=device.fanc_number,
            licences=frozenset(),
            billing_number=None,
            decommissioned=False,
        )

    @property
    def fingerprint(self) -> str:
        """The facts a command of the import depends on; command ids carry it, the version would not do:
        a state the import predicts must give the id that the same state read back gives."""
        facts = [
            self.mid_id,
            self.modality,
            {k: _json(v) for k, v in self.record.items()},
            self.legacy_number,
            sorted(self.licences),
            self.billing_number,
            self.decommissioned,
        ]
        canonical = json.dumps(facts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


LEGACY_REF_TOPIC = f"{get_topic(LegacyRef)}.Assigned"


def legacy_refs(register: Register, page: int = 5000) -> dict[tuple[str, str], str]:
    """(institution, legacy reference) → MID-ID, for every device backfilled so far."""
    found: dict[tuple[str, str], str] = {}
    start = 0
    while True:
        notifications = register.recorder.select_notifications(
            start, page, topics=[LEGACY_REF_TOPIC], inclusive_of_start=False
        )
        for notification in notifications:
            assigned: Any = register.mapper.to_domain_event(notification)
            found[(assigned.institution, assigned.legacy_ref)] = assigned.mid_id
        if len(notifications) < page:
            return found
        start = notifications[-1].id


def read_device(register: Register, mid_id: str) -> Device | None:
    """For reading only: the cached aggregate itself, not a copy."""
    try:
        device: Any = register.repository.get(device_id(mid_id), deepcopy_from_cache=False)
    except AggregateNotFoundError:
        return None
    return device if isinstance(device, Device) else None


def _event_classes(base: type) -> list[type]:
    found: list[type] = []
    subclass: type
    for subclass in base.__subclasses__():
        found += [subclass, *_event_classes(subclass)]
    return found


DEVICE_TOPICS = sorted({get_topic(cls) for cls in _event_classes(Device.Event)})


def read_devices(
    register: Register, mid_ids: Collection[str] | None = None, page: int = 5000
) -> dict[str, Device]:
    """MID-ID → device, for those devices (all when None), from one query per page of device events.

    Reading a backfilled register device by device costs a query or two each; in pages, reading
    twenty thousand devices costs a few dozen.
    """
    wanted = None if mid_ids is None else {device_id(mid_id) for mid_id in mid_ids}
    if wanted is not None and not wanted:
        return {}
    devices: dict[Any, Any] = {}
    start = 0
    while True:
        notifications = register.recorder.select_notifications(
            start, page, topics=DEVICE_TOPICS, inclusive_of_start=False
        )
        for notification in notifications:
            if wanted is not None and notification.originator_id not in wanted:
                continue
            event: Any = register.mapper.to_domain_event(notification)
            devices[event.originator_id] = event.mutate(devices.get(event.originator_id))
        if len(notifications) < page:
            break
        start = notifications[-1].id
    return {device.mid_id: device for device in devices.values() if isinstance(device, Device)}


# what to send


@dataclass(frozen=True)
class PlannedCommand:
    """One command of the import, with an id derived from what it says and the state it was planned on."""

    row: int | None
    key: tuple[str, str]
    step: str
    source: str
    type: str
    data: dict[str, Any]
    command_id: str

    def inbound(self, sent_at: datetime) -> Inbound:
        envelope = {
            "specversion": "1.0",
            "id": self.command_id,
            "source": self.source,
            "type": self.type,
            "time": sent_at.isoformat().replace("+00:00", "Z"),
            "datacontenttype": "application/json",
            "data": self.data,
        }
        subject = f"kadaster.cmd.{self.source.replace('/', '.')}.{self.type}"
        return Inbound(json.dumps(envelope, ensure_ascii=False).encode(), subject, channel=IMPORT_CHANNEL)


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def command_id(scope: str, step: str, data: dict[str, Any], planned_on: str | None = None) -> str:
    """`legacy:<institution>:<label>:<step>:<digest>`; the digest covers the data and the state planned on.

    The same file against the same register gives the same ids, so sending again is a duplicate;
    once the device changed, a command refused before is a new command and is tried again.
    """
    canonical = json.dumps(
        [step, data, planned_on], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:12]
    readable = f"legacy:{scope}:{step}:{digest}"
    if len(readable) <= 128:
        return readable
    return f"legacy:{hashlib.sha256(scope.encode()).hexdigest()[:32]}:{step}:{digest}"


def _planned(
    device: LegacyDevice, step: str, source: str, type_: str, data: dict[str, Any], planned_on: str | None
) -> PlannedCommand:
    scope = f"{device.institution}:{device.label}"
    return PlannedCommand(
        device.row, device.key, step, source, type_, data, command_id(scope, step, data, planned_on)
    )


def plan_institution(facts: InstitutionFacts) -> PlannedCommand | None:
    """`institution.register` for an institution the register does not know, if the file says where it is."""
    if facts.region is None:
        return None
    data = {
        "institution": facts.institution,
        "name": facts.name,
        "province": facts.province or UNKNOWN_PROVINCE,
        "region": facts.region,
        "campuses": list(facts.campuses),
    }
    scope = facts.institution
    return PlannedCommand(
        None,
        (facts.institution, ""),
        "institution",
        FOD,
        "institution.register",
        data,
        command_id(scope, "institution", data),
    )


def plan_backfill(device: LegacyDevice, source_name: str) -> PlannedCommand:
    data: dict[str, Any] = {
        "institution": device.institution,
        "modality": device.modality,
        "legacy_ref": device.label,
        **{name: _json(value) for name, value in device.statement().items()},
        "registered_on": device.registered_on.isoformat(),
    }
    # The old FANC number goes in with the backfill so the device and its number are recorded at once.
    if device.fanc_number is not None:
        data["legacy_number"] = device.fanc_number
    return _planned(device, "backfill", FOD, "midid.backfill", data, None)


@dataclass(frozen=True)
class Refusal:
    """A row the import will not apply, or a command of it the register refused."""

    row: int | None
    institution: str
    label: str
    step: str
    code: str
    message: str
    command_id: str | None = None
    earlier: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "institution": self.institution,
            "label": self.label,
            "step": self.step,
            "code": self.code,
            "message": self.message,
            "command_id": self.command_id,
            "earlier": self.earlier,
        }


def plan_changes(
    device: LegacyDevice, state: DeviceState, source_name: str
) -> tuple[list[PlannedCommand], list[Refusal]]:
    """What to send, in order, so the register says what the row says. It adds and corrects, never removes.

    Corrections and FANC come first; billing and decommissioning are planned on the state those
    leave, so a billing number is asked for once the licence it needs is there.
    """
    mid_id = state.mid_id
    if state.modality != device.modality:
        return [], [
            Refusal(
                device.row,
                device.institution,
                device.label,
                "correct",
                "conflict",
                f"{device.label} is the {state.modality} carrying {mid_id}; a MID-ID's modality never "
                "changes (a new device takes a new label)",
            )
        ]
    commands: list[PlannedCommand] = []
    refusals: list[Refusal] = []
    planned_on = state.fingerprint
    statement = device.statement()
    corrections = {name: value for name, value in statement.items() if state.record.get(name) != value}
    if corrections:
        data = {
            "mid_id": mid_id,
            "corrections": {name: _json(value) for name, value in corrections.items()},
            "reason": f"legacy kadaster register {source_name}, row {device.row}",
        }
        commands.append(_planned(device, "correct", FOD, "device.correct", data, planned_on))
    legacy_number = state.legacy_number
    if device.fanc_number is not None and legacy_number != device.fanc_number:
        data = {"legacy_number": device.fanc_number, "mid_id": mid_id}
        commands.append(_planned(device, "fanc-number", FOD, "fanc.legacy-number", data, planned_on))
        legacy_number = legacy_number or device.fanc_number
    licences = state.licences
    # A licence and a billing number ended with the device; an out-of-service row records neither.
    in_service = not device.out_of_service and not state.decommissioned
    # The FANC unique number stands for the device's licence, valid since it was installed.
    licence = device.fanc_number
    if licence is not None and in_service and licence not in licences:
        data = {"mid_id": mid_id, "licence_ref": licence, "valid_from": device.installed_on.isoformat()}
        commands.append(_planned(device, "licence", FOD, "fanc.licence", data, planned_on))
        licences = licences | {licence}
    if state.decommissioned:
        if not device.out_of_service:
            refusals.append(
                Refusal(
                    device.row,
                    device.institution,
                    device.label,
                    "decommission",
                    "device_decommissioned",
                    f"the device carrying {mid_id} was decommissioned; it does not return to service",
                )
            )
        return commands, refusals
    planned_on = DeviceState(
        mid_id,
        state.modality,
        {**state.record, **corrections},
        legacy_number,
        licences,
        state.billing_number,
        state.decommissioned,
    ).fingerprint
    if device.billing_number is not None and in_service and state.billing_number != device.billing_number:
        data = {"mid_id": mid_id, "billing_number": device.billing_number}
        commands.append(_planned(device, "billing", FOD, "billing.assign", data, planned_on))
    if device.out_of_service:
        effective_on = device.decommissioned_on or max(LEGACY_CUTOFF, device.installed_on)
        data = {
            "mid_id": mid_id,
            "effective_on": effective_on.isoformat(),
            "reason": "out of service in the legacy kadaster register",
        }
        commands.append(_planned(device, "decommission", FOD, "device.decommission", data, planned_on))
    return commands, refusals


# running it


@dataclass
class RowResult:
    row: int
    institution: str
    label: str
    mid_id: str | None = None
    created: bool = False
    changed: list[str] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.refusals:
            return "rejected"
        if self.created:
            return "created"
        return "changed" if self.changed else "unchanged"

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "institution": self.institution,
            "label": self.label,
            "mid_id": self.mid_id,
            "status": self.status,
            "changed": self.changed,
        }


@dataclass
class ImportSummary:
    """What an import did (or, for a dry run, would do), row by row and in total."""

    file: str
    dry_run: bool = False
    rows: int = 0
    problems: list[Problem] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    results: dict[int, RowResult] = field(default_factory=dict)
    institutions_registered: list[str] = field(default_factory=list)
    institutions_unregistered: list[str] = field(default_factory=list)
    institution_refusals: list[Refusal] = field(default_factory=list)
    commands: dict[str, int] = field(
        default_factory=lambda: {"sent": 0, "accepted": 0, "rejected": 0, "duplicates": 0}
    )
    recorded: bool = False

    def count(self, status: str) -> int:
        return sum(1 for result in self.results.values() if result.status == status)

    @property
    def invalid(self) -> int:
        return len({p.row for p in self.problems if p.code != "file"})

    @property
    def refusals(self) -> list[Refusal]:
        found = [*self.institution_refusals]
        for row in sorted(self.results):
            found.extend(self.results[row].refusals)
        return found

    def totals(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "created": self.count("created"),
            "changed": self.count("changed"),
            "unchanged": self.count("unchanged"),
            "rejected": self.count("rejected"),
            "invalid": self.invalid,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "dry_run": self.dry_run,
            "recorded": self.recorded,
            **self.totals(),
            "commands": dict(self.commands),
            "institutions_registered": self.institutions_registered,
            "institutions_unregistered": self.institutions_unregistered,
            "ignored_columns": self.ignored_columns,
            "problems": [p.as_dict() for p in self.problems],
            "refusals": [r.as_dict() for r in self.refusals],
            "devices": [self.results[row].as_dict() for row in sorted(self.results)],
        }


Progress = Callable[[str, int, int], None]
"""(phase, done, total): the institutions' commands, then the file's devices."""


class LegacyImport:
    """Records a checked legacy register through the command pipeline, a batch per transaction.

    Institutions first; then the devices a batch at a time: their backfills (which issue the
    MID-IDs), then their corrections, FANC numbers and licences, billing numbers and
    decommissioning, while the devices just recorded are still in memory. A row the register
    already agrees with sends nothing.
    """

    def __init__(
        self,
        processor: CommandProcessor,
        sent_at: datetime,
        batch_size: int = DEFAULT_BATCH_SIZE,
        progress: Progress | None = None,
    ) -> None:
        self.processor = processor
        self.register = processor.register
        self.sent_at = sent_at
        self.batch_size = batch_size
        self.progress = progress

    def run(self, legacy: LegacyFile, skip_invalid: bool = False, dry_run: bool = False) -> ImportSummary:
        summary = ImportSummary(
            file=legacy.name,
            dry_run=dry_run,
            rows=legacy.rows,
            problems=list(legacy.problems),
            ignored_columns=list(legacy.ignored_columns),
        )
        if not legacy.readable or (legacy.problems and not skip_invalid and not dry_run):
            return summary
        known = legacy_refs(self.register)
        for device in legacy.devices:
            result = summary.results[device.row] = RowResult(device.row, device.institution, device.label)
            result.mid_id = known.get(device.key)
        institutions = self._institutions(legacy, summary)
        existing = read_devices(self.register, [r.mid_id for r in summary.results.values() if r.mid_id])
        if dry_run:
            return self._dry_run(legacy, summary, institutions, existing)
        self._send("institutions", institutions, summary)
        total = len(legacy.devices)
        self._progress("devices", 0, total)
        for start in range(0, total, self.batch_size):
            chunk = legacy.devices[start : start + self.batch_size]
            new = [device for device in chunk if summary.results[device.row].mid_id is None]
            self._send(None, [plan_backfill(device, legacy.name) for device in new], summary)
            self._send(None, self._changes(chunk, existing, legacy.name, summary), summary)
            self._progress("devices", start + len(chunk), total)
        summary.recorded = True
        return summary

    def _changes(
        self,
        chunk: Sequence[LegacyDevice],
        existing: dict[str, Device],
        source_name: str,
        summary: ImportSummary,
    ) -> list[PlannedCommand]:
        commands: list[PlannedCommand] = []
        for device in chunk:
            result = summary.results[device.row]
            if result.mid_id is None:
                continue
            if result.created:
                state: DeviceState | None = DeviceState.after_backfill(device, result.mid_id)
            else:
                # Backfilled before this import, or by another one while it ran.
                found = existing.get(result.mid_id) or read_device(self.register, result.mid_id)
                state = DeviceState.of(found) if found is not None else None
            if state is None:
                continue
            planned, refusals = plan_changes(device, state, source_name)
            commands += planned
            result.refusals += refusals
        return commands

    def _institutions(self, legacy: LegacyFile, summary: ImportSummary) -> list[PlannedCommand]:
        stated = list(legacy.institutions().values())
        registered = set()
        for start in range(0, len(stated), self.batch_size):
            ids = [institution_id(facts.institution) for facts in stated[start : start + self.batch_size]]
            registered |= set(self.register.created(ids))
        commands = []
        for facts in stated:
            if institution_id(facts.institution) in registered:
                continue
            planned = plan_institution(facts)
            if planned is None:
                summary.institutions_unregistered.append(facts.institution)
            else:
                commands.append(planned)
        return commands

    def _progress(self, label: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(label, done, total)

    def _send(self, label: str | None, commands: list[PlannedCommand], summary: ImportSummary) -> None:
        """Sends the commands a batch at a time; with a label, the progress counts them."""
        total = len(commands)
        if label is not None:
            self._progress(label, 0, total)
        for start in range(0, total, self.batch_size):
            batch = commands[start : start + self.batch_size]
            handled = self.processor.process([command.inbound(self.sent_at) for command in batch])
            for command, outcome in zip(batch, handled, strict=True):
                self._account(command, outcome.outcome, outcome.duplicate, summary)
            if label is not None:
                self._progress(label, min(start + self.batch_size, total), total)

    @staticmethod
    def _account(
        command: PlannedCommand,
        outcome: dict[str, Any],
        duplicate: bool,
        summary: ImportSummary,
    ) -> None:
        summary.commands["sent"] += 1
        summary.commands["duplicates"] += duplicate
        accepted = outcome.get("status") == "accepted"
        summary.commands["accepted" if accepted else "rejected"] += 1
        result = summary.results.get(command.row) if command.row is not None else None
        if command.step == "institution" and accepted and not duplicate:
            summary.institutions_registered.append(command.key[0])
        if accepted:
            if result is not None and command.step == "backfill":
                result.mid_id = outcome["result"]["mid_id"]
                result.created = not duplicate and not outcome["result"]["already_backfilled"]
            elif result is not None and not duplicate:
                result.changed.append(command.step)
            return
        for error in outcome.get("errors") or [{"code": "internal_error", "message": "no outcome"}]:
            refusal = Refusal(
                command.row,
                command.key[0],
                command.key[1],
                command.step,
                str(error.get("code")),
                f"{command.type}: {error.get('message')}",
                command.command_id,
                earlier=duplicate,
            )
            if result is None:
                summary.institution_refusals.append(refusal)
            else:
                result.refusals.append(refusal)

    def _dry_run(
        self,
        legacy: LegacyFile,
        summary: ImportSummary,
        institutions: list[PlannedCommand],
        existing: dict[str, Device],
    ) -> ImportSummary:
        summary.institutions_registered = [c.key[0] for c in institutions]
        planned = len(institutions)
        for device in legacy.devices:
            result = summary.results[device.row]
            found = existing.get(result.mid_id) if result.mid_id else None
            if found is None:
                state = DeviceState.after_backfill(device, "MID-(new)")
                result.created = True
                planned += result.mid_id is None
            else:
                state = DeviceState.of(found)
            commands, result.refusals = plan_changes(device, state, legacy.name)
            if found is not None:
                result.changed = [command.step for command in commands]
            planned += len(commands)
        summary.commands["planned"] = planned
        return summary


# the hospitals' letters


@dataclass(frozen=True)
class LetterLine:
    """One backfilled device as its hospital's letter lists it, with the MID-ID it received."""

    institution: str
    label: str
    modality: str
    manufacturer: str
    model: str
    serial_number: str
    campus: str
    mid_id: str
    status: str


LETTER_COLUMNS = (
    ("label", "label"),
    ("modality", "modality"),
    ("manufacturer", "manufacturer"),
    ("model", "model"),
    ("serial_number", "serial number"),
    ("campus", "campus"),
    ("mid_id", "MID-ID"),
    ("status", "status"),
)


def natural_order(label: str) -> tuple[Any, ...]:
    """CT2 before CT10."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", label))


def legacy_letters(register: Register) -> list[LetterLine]:
    """Every backfilled device with its MID-ID and what the register says about it now."""
    lines = []
    refs = legacy_refs(register)
    devices = read_devices(register, refs.values())
    for (institution, label), mid_id in refs.items():
        device = devices.get(mid_id)
        if device is None:
            continue
        record = device.record
        lines.append(
            LetterLine(
                institution=institution,
                label=label,
                modality=device.modality,
                manufacturer=str(record.get("manufacturer", "")),
                model=str(record.get("model", "")),
                serial_number=str(record.get("serial_number", "")),
                campus=str(record.get("campus", "")),
                mid_id=device.mid_id,
                status=device.status,
            )
        )
    return sorted(lines, key=lambda line: (line.institution, natural_order(line.label)))
