"""Writes the made-up legacy kadaster registers in tests/data (fixed seed), or a large one for timing.

python tests/data/make_legacy_samples.py                      # the committed samples
python tests/data/make_legacy_samples.py --devices 20000 --out /tmp/legacy_20k.csv
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 20221001

DUTCH_HEADERS = (
    "Erkenningsnummer",
    "Naam instelling",
    "Provincie",
    "Toestel",
    "Modaliteit",
    "Fabrikant",
    "Model",
    "Serienummer",
    "Campus",
    "Installatiedatum",
    "Gebruik",
    "FANC-nummer",
    "Facturatienummer",
    "Status",
    "Buiten gebruik sinds",
)
ENGLISH_HEADERS = (
    "Recognition number",
    "Hospital name",
    "Province",
    "Device label",
    "Modality",
    "Manufacturer",
    "Model",
    "Serial number",
    "Site",
    "Installation date",
    "Use",
    "FANC number",
    "Billing number",
    "Status",
    "Out of service since",
)
DUTCH_USE = {"clinical": "klinisch", "research": "onderzoek", "mixed": "gemengd"}
PROVINCES_EN = {
    "Antwerpen": "Antwerp",
    "Limburg": "Limburg",
    "Oost-Vlaanderen": "East Flanders",
    "West-Vlaanderen": "West Flanders",
    "Vlaams-Brabant": "Flemish Brabant",
    "Brussel": "Brussels",
    "Henegouwen": "Hainaut",
    "Luik": "Liège",
    "Luxemburg": "Luxembourg",
    "Namen": "Namur",
    "Waals-Brabant": "Walloon Brabant",
}


@dataclass(frozen=True)
class Hospital:
    number: str
    name: str
    province: str
    campuses: tuple[str, ...]
    size: str


HOSPITALS = (
    Hospital("71000123", "AZ Leiedal", "West-Vlaanderen", ("Campus Kortrijk-Noord", "Campus Menen"), "large"),
    Hospital(
        "71000217", "AZ Zeekant", "West-Vlaanderen", ("Campus Oostende", "Campus Blankenberge"), "medium"
    ),
    Hospital("71000389", "AZ Kempenland", "Antwerpen", ("Campus Turnhout", "Campus Geel"), "medium"),
    Hospital(
        "71000415",
        "ZNA Scheldeoever",
        "Antwerpen",
        ("Campus Linkeroever", "Campus Centrum", "Campus Noord"),
        "large",
    ),
    Hospital(
        "71000532", "UZ Dijlevallei", "Vlaams-Brabant", ("Campus Heverlee", "Campus Pellenberg"), "large"
    ),
    Hospital("71000648", "AZ Dender", "Oost-Vlaanderen", ("Campus Aalst", "Campus Geraardsbergen"), "medium"),
    Hospital("71000761", "AZ Maasland", "Limburg", ("Campus Genk", "Campus Maasmechelen"), "medium"),
    Hospital("71000874", "AZ Leie en Schelde", "Oost-Vlaanderen", ("Campus Gent-Zuid",), "small"),
    Hospital(
        "71000916",
        "Ziekenhuis Zenne - Hôpital de la Senne",
        "Brussel",
        ("Site Anderlecht", "Site Molenbeek"),
        "medium",
    ),
    Hospital("71001027", "Cliniques de la Woluwe", "Brussel", ("Site Woluwe",), "small"),
    Hospital("71001138", "CHU Meuse", "Luik", ("Site Sart-Tilman Est", "Site Seraing"), "medium"),
    Hospital(
        "71001249", "Grand Hôpital de Sambre", "Henegouwen", ("Site Sainte-Élisabeth", "Site Gilly"), "small"
    ),
    Hospital("71001350", "CHR Haute-Meuse", "Namen", ("Site Namur", "Site Dinant"), "small"),
    Hospital("71001461", "Vivalia Ardenne", "Luxemburg", ("Site Arlon", "Site Libramont"), "small"),
    Hospital("71001572", "Clinique du Brabant wallon", "Waals-Brabant", ("Site Ottignies",), "small"),
)

SLOTS = {
    "large": {"CT": 6, "MRI": 5, "SPECT-CT": 3, "PET-CT": 2, "PET": 1},
    "medium": {"CT": 4, "MRI": 3, "SPECT-CT": 2, "PET-CT": 1},
    "small": {"CT": 2, "MRI": 2, "SPECT-CT": 1},
}
RESEARCH_SLOTS = {"71000532": ("MRI", "PET-MRI"), "71000415": ("PET-MRI",)}

# (model, first year it was sold) per manufacturer and modality
MODELS: dict[str, dict[str, tuple[tuple[str, int], ...]]] = {
    "Siemens Healthineers": {
        "CT": (
            ("SOMATOM Definition AS", 2007),
            ("SOMATOM Definition Flash", 2009),
            ("SOMATOM Force", 2014),
            ("SOMATOM Drive", 2016),
            ("SOMATOM go.Top", 2018),
            ("SOMATOM X.cite", 2020),
        ),
        "MRI": (
            ("MAGNETOM Avanto", 2004),
            ("MAGNETOM Aera", 2010),
            ("MAGNETOM Skyra", 2010),
            ("MAGNETOM Vida", 2017),
            ("MAGNETOM Sola", 2018),
        ),
        "SPECT-CT": (("Symbia T16", 2005), ("Symbia Intevo", 2013), ("Symbia Intevo Bold", 2017)),
        "PET-CT": (("Biograph TruePoint", 2005), ("Biograph mCT", 2009), ("Biograph Vision", 2018)),
        "PET-MRI": (("Biograph mMR", 2011),),
        "PET": (("ECAT EXACT HR+", 2000),),
    },
    "GE HealthCare": {
        "CT": (
            ("LightSpeed VCT", 2005),
            ("Discovery CT750 HD", 2009),
            ("Optima CT660", 2011),
            ("Revolution CT", 2014),
            ("Revolution EVO", 2015),
            ("Revolution Apex", 2020),
        ),
        "MRI": (
            ("Signa HDxt", 2005),
            ("Discovery MR750w", 2011),
            ("Optima MR450w", 2011),
            ("SIGNA Architect", 2017),
            ("SIGNA Premier", 2018),
            ("SIGNA Artist", 2017),
        ),
        "SPECT-CT": (("Infinia Hawkeye 4", 2005), ("Discovery NM/CT 670", 2011), ("NM/CT 870 DR", 2018)),
        "PET-CT": (("Discovery STE", 2005), ("Discovery 710", 2010), ("Discovery MI", 2016)),
        "PET-MRI": (("SIGNA PET/MR", 2014),),
        "PET": (("Advance NXi", 2000),),
    },
    "Philips": {
        "CT": (
            ("Brilliance 64", 2005),
            ("Brilliance iCT", 2008),
            ("Ingenuity CT", 2012),
            ("IQon Spectral CT", 2016),
            ("Incisive CT", 2019),
        ),
        "MRI": (
            ("Achieva 1.5T", 2004),
            ("Achieva 3.0T TX", 2008),
            ("Ingenia 1.5T", 2011),
            ("Ingenia 3.0T", 2011),
            ("Ingenia Ambition 1.5T", 2018),
        ),
        "SPECT-CT": (("Precedence", 2005), ("BrightView XCT", 2009)),
        "PET-CT": (("Gemini TF", 2006), ("Ingenuity TF", 2011), ("Vereos", 2015)),
        "PET": (("Allegro", 2002),),
    },
    "Canon Medical": {
        "CT": (
            ("Aquilion 64", 2005),
            ("Aquilion ONE", 2008),
            ("Aquilion Prime SP", 2016),
            ("Aquilion Lightning", 2017),
            ("Aquilion ONE PRISM", 2020),
        ),
        "MRI": (("Vantage Titan", 2010), ("Vantage Galan 3T", 2017), ("Vantage Orian", 2018)),
        "PET-CT": (("Celesteion", 2014),),
    },
    "United Imaging": {
        "CT": (("uCT 760", 2019), ("uCT 960+", 2020)),
        "MRI": (("uMR 780", 2019), ("uMR 570", 2019)),
        "PET-CT": (("uMI 550", 2020), ("uMI 780", 2019)),
        "PET-MRI": (("uPMR 790", 2020),),
    },
}
RESEARCH_MODELS = {"MRI": ("Siemens Healthineers", "MAGNETOM Terra 7T", 2017)}
SERIAL_CODES = {"CT": "CT", "MRI": "MR", "PET": "PT", "PET-CT": "PC", "PET-MRI": "PM", "SPECT-CT": "NM"}
MARKET_SHARE = {
    "Siemens Healthineers": 38,
    "GE HealthCare": 25,
    "Philips": 22,
    "Canon Medical": 10,
    "United Imaging": 8,
}


@dataclass(frozen=True)
class Device:
    hospital: Hospital
    label: str
    modality: str
    manufacturer: str
    model: str
    serial_number: str
    campus: str
    installed_on: date
    use: str
    fanc_number: str
    billing_number: str
    decommissioned_on: date | None


class Generator:
    def __init__(self, seed: int = SEED) -> None:
        self.random = random.Random(seed)
        self.serials: set[tuple[str, str]] = set()
        self.numbers: set[str] = set()

    def day_in(self, year: int) -> date:
        return date(year, 1, 1) + timedelta(days=self.random.randrange(365))

    def manufacturer_for(self, modality: str, year: int) -> tuple[str, str]:
        makers = [m for m in MODELS if any(since <= year for _, since in MODELS[m].get(modality, ()))]
        maker = self.random.choices(makers, weights=[MARKET_SHARE[m] for m in makers])[0]
        models = [name for name, since in MODELS[maker][modality] if since <= year]
        # The newest models of the day sell best.
        return maker, self.random.choice(models[-3:])

    def serial(self, maker: str, modality: str) -> str:
        while True:
            digits = self.random.randrange(10**7)
            code = SERIAL_CODES[modality]
            letters = f"{chr(65 + digits % 26)}{chr(65 + digits // 7 % 26)}"
            serial = {
                "Siemens Healthineers": f"{digits % 10**6:06d}",
                "GE HealthCare": f"{code}{digits % 10**5:05d}{letters}",
                "Philips": f"{digits % 10**5:05d}",
                "Canon Medical": f"{1 + digits % 9}{chr(65 + digits % 26)}A{digits:07d}",
                "United Imaging": f"UI{digits:08d}",
            }[maker]
            if (maker, serial) not in self.serials:
                self.serials.add((maker, serial))
                return serial

    def number(self, prefix: str, year: int | None = None) -> str:
        while True:
            draw = self.random.randrange(10**6)
            value = f"F{year}-{draw % 10**5:05d}" if prefix == "F" else f"7{draw:06d}"
            if value not in self.numbers:
                self.numbers.add(value)
                return value

    def slots(self, hospital: Hospital) -> list[tuple[str, str]]:
        """(modality, use) of each place a device stands, replaced over the years."""
        slots = []
        for modality, count in SLOTS[hospital.size].items():
            for _ in range(count):
                mixed = hospital.size == "large" and self.random.random() < 0.15
                slots.append((modality, "mixed" if mixed else "clinical"))
        for modality in RESEARCH_SLOTS.get(hospital.number, ()):
            slots.append((modality, "research" if modality == "MRI" else "mixed"))
        return slots

    def first_year(self, modality: str, use: str) -> int:
        if use == "research":
            return 2017 + self.random.randrange(3)
        if modality == "PET-MRI":
            return 2011 + self.random.randrange(6)
        return 2005 + self.random.randrange(12)

    def hospital_devices(self, hospital: Hospital) -> list[Device]:
        # installed, modality, campus, use, retired
        history: list[tuple[date, str, str, str, date | None]] = []
        for modality, use in self.slots(hospital):
            campus = self.random.choice(hospital.campuses)
            installed = self.day_in(self.first_year(modality, use))
            while True:
                successor = self.day_in(installed.year + 9 + self.random.randrange(5))
                if successor >= date(2022, 9, 1):
                    history.append((installed, modality, campus, use, None))
                    break
                retired = successor - timedelta(days=self.random.randrange(1, 60))
                history.append((installed, modality, campus, use, retired))
                # Stand-alone PET gave way to PET-CT: nothing takes its place.
                if modality == "PET":
                    break
                installed = successor
        history.sort(key=lambda item: (item[0], item[1]))
        sequence: dict[str, int] = {}
        devices = []
        for installed, modality, campus, use, retired in history:
            sequence[modality] = sequence.get(modality, 0) + 1
            if use == "research" and modality in RESEARCH_MODELS:
                maker, model, _since = RESEARCH_MODELS[modality]
            else:
                maker, model = self.manufacturer_for(modality, installed.year)
            devices.append(
                Device(
                    hospital=hospital,
                    label=f"{modality}{sequence[modality]}",
                    modality=modality,
                    manufacturer=maker,
                    model=model,
                    serial_number=self.serial(maker, modality),
                    campus=campus,
                    installed_on=installed,
                    use=use,
                    fanc_number=self.number("F", installed.year) if modality != "MRI" else "",
                    billing_number=self.number("7") if use != "research" else "",
                    decommissioned_on=retired,
                )
            )
        return devices

    def register(self, hospitals: tuple[Hospital, ...] = HOSPITALS) -> list[Device]:
        return [device for hospital in hospitals for device in self.hospital_devices(hospital)]

    def large_register(self, devices: int) -> list[Device]:
        """As many made-up hospitals as it takes, each like one of the sample's."""
        found: list[Device] = []
        number = 72000000
        while len(found) < devices:
            model = HOSPITALS[len(found) % len(HOSPITALS)]
            number += 1
            found += self.hospital_devices(replace(model, number=str(number), name=f"{model.name} {number}"))
        return found[:devices]


def dutch_date(generator: Generator, day: date) -> str:
    """Mostly dd/mm/yyyy as a Belgian Excel exports it, with the variants people type."""
    form = generator.random.random()
    if form < 0.75:
        return day.strftime("%d/%m/%Y")
    if form < 0.85:
        return f"{day.day}/{day.month}/{day.year}"
    if form < 0.93:
        return day.strftime("%d-%m-%Y")
    return day.isoformat()


def dutch_rows(generator: Generator, devices: list[Device]) -> list[list[str]]:
    return [
        [
            d.hospital.number,
            d.hospital.name,
            d.hospital.province,
            d.label,
            d.modality,
            d.manufacturer,
            d.model,
            d.serial_number,
            d.campus,
            dutch_date(generator, d.installed_on),
            DUTCH_USE[d.use],
            d.fanc_number,
            d.billing_number,
            "buiten gebruik" if d.decommissioned_on else "in gebruik",
            dutch_date(generator, d.decommissioned_on) if d.decommissioned_on else "",
        ]
        for d in devices
    ]


def write_csv(path: Path, rows: list[list[str]]) -> None:
    # Belgian Excel writes ';' and, saved as "CSV UTF-8", a byte order mark.
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(DUTCH_HEADERS)
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode("utf-8-sig"))


def write_xlsx(path: Path, devices: list[Device]) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Kadaster"
    sheet.append(ENGLISH_HEADERS)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for d in devices:
        sheet.append(
            [
                int(d.hospital.number),
                d.hospital.name,
                PROVINCES_EN[d.hospital.province],
                d.label,
                d.modality,
                d.manufacturer,
                d.model,
                d.serial_number,
                d.campus,
                d.installed_on,
                d.use,
                d.fanc_number or None,
                d.billing_number or None,
                "decommissioned" if d.decommissioned_on else "in service",
                d.decommissioned_on,
            ]
        )
    for row in sheet.iter_rows(min_row=2):
        for cell in (row[9], row[14]):
            cell.number_format = "DD/MM/YYYY"
    workbook.properties.created = datetime(2022, 10, 1)
    buffer = io.BytesIO()
    workbook.save(buffer)
    # Same seed, same bytes: zip entries get a fixed time instead of the clock's.
    with (
        zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as source,
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=(2022, 10, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            content = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                # openpyxl stamps the time of saving, whatever the properties say.
                content = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>2022-10-01T00:00:00Z", content)
            target.writestr(entry, content)


def with_errors(rows: list[list[str]]) -> list[list[str]]:
    """A copy with one deliberate error on each of a dozen rows (on the later row of a clashing pair)."""
    rows = [list(row) for row in rows]
    col = {name: index for index, name in enumerate(DUTCH_HEADERS)}
    used: set[int] = set()

    def find(start: int, test: Callable[[list[str]], bool]) -> int:
        found = next(i for i in range(start, len(rows)) if i not in used and test(rows[i]))
        used.add(found)
        return found

    def later_pair(start: int, same: Callable[[list[str], list[str]], bool]) -> tuple[int, int]:
        for later in range(start, len(rows)):
            for earlier in range(later):
                if not {earlier, later} & used and same(rows[earlier], rows[later]):
                    used.update((earlier, later))
                    return earlier, later
        raise LookupError("no such pair of rows")

    def at(position: int) -> int:
        # Spread over the file whatever its length (positions are out of 200).
        return position * len(rows) // 200

    def set_cell(row: int, column: str, value: str) -> None:
        rows[row][col[column]] = value

    set_cell(find(at(5), lambda r: r[col["Modaliteit"]] == "CT"), "Modaliteit", "Cone-beam CT")
    set_cell(find(at(20), lambda r: r[col["Status"]] == "in gebruik"), "Installatiedatum", "31/02/2014")
    earlier, later = later_pair(at(35), lambda a, b: a[0] == b[0] and a[4] == b[4])
    set_cell(later, "Toestel", rows[earlier][col["Toestel"]])
    earlier, later = later_pair(at(60), lambda a, b: a[5] == b[5] and a[0] != b[0])
    set_cell(later, "Serienummer", rows[earlier][col["Serienummer"]])
    set_cell(find(at(80), lambda r: True), "Fabrikant", "")
    set_cell(find(at(0), lambda r: r[col["Gebruik"]] == "onderzoek"), "Facturatienummer", "7999001")
    set_cell(find(at(100), lambda r: r[col["Modaliteit"]] == "MRI"), "FANC-nummer", "F2015-99001")
    set_cell(find(at(120), lambda r: r[col["Status"]] == "in gebruik"), "Status", "in herstelling")
    set_cell(find(at(140), lambda r: True), "Gebruik", "veterinair")
    row = find(at(160), lambda r: True)
    number = rows[row][col["Erkenningsnummer"]]
    set_cell(row, "Erkenningsnummer", f"{number[:3]}/{number[3:]}")
    set_cell(find(at(175), lambda r: r[col["Status"]] == "in gebruik"), "Installatiedatum", "5/3/15")
    earlier, later = later_pair(at(190), lambda a, b: bool(a[11] and b[11]) and a[0] == b[0])
    set_cell(later, "FANC-nummer", rows[earlier][col["FANC-nummer"]])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, help="write a register of this many devices to --out instead")
    parser.add_argument("--out", type=Path, help="where the large register goes (.csv or .xlsx)")
    args = parser.parse_args()
    generator = Generator()
    if args.devices:
        devices = generator.large_register(args.devices)
        out: Path = args.out or Path(f"legacy_register_{args.devices}.csv")
        if out.suffix == ".xlsx":
            write_xlsx(out, devices)
        else:
            write_csv(out, dutch_rows(generator, devices))
        print(f"{len(devices)} devices written to {out}")
        return
    devices = generator.register()
    rows = dutch_rows(generator, devices)
    write_csv(HERE / "legacy_register.csv", rows)
    write_xlsx(HERE / "legacy_register.xlsx", devices)
    write_csv(HERE / "legacy_register_with_errors.csv", with_errors(rows))
    retired = sum(1 for d in devices if d.decommissioned_on)
    print(f"{len(devices)} devices ({retired} decommissioned) in {len(HOSPITALS)} hospitals: {HERE}")


if __name__ == "__main__":
    main()
