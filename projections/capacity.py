"""Capacity by province: devices in service per modality and province, per 100,000 inhabitants.

A device is in service from its hospital's report (or the FOD's backfill) until it is
decommissioned; `linked` counts those the FOD has also linked. A province is the one its
institution is registered in (none for an institution the FOD has not registered). Population
comes from the most recent `nmr` allocation round that gave it (`round.open` policy inputs
`provinces[].population`): the register keeps no other population figures, so a province no such
round named has no per-100,000 figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar

from eventsourcing.domain import Aggregate

from domain import device_events
from domain.allocation_round import AllocationRound
from domain.device import Device
from domain.institution import Institution
from projections.projector import Handler, Projection
from projections.store import Row, Transaction
from projections.writes import Batch

PER = 100_000


def province_key(name: str) -> str:
    """Rounds and institution records may spell a province with other case or spacing."""
    return " ".join(name.split()).casefold()


class Capacity(Projection):
    name = "capacity"
    # 2: every row version kept (recorded_from, recorded_to).
    # 3: the versions written with the rows, at the end of each batch (no triggers).
    version = 3
    # Capacity counts devices in service per province and the figures a round was opened with.
    ignored = (
        "AllocationRound.ApplicationFiled",
        "AllocationRound.ApplicationWithdrawn",
        "AllocationRound.Closed",
        "AllocationRound.Decided",
        "AllocationRound.Finalised",
        "AllocationRound.Granted",
        "AllocationRound.ObjectionLodged",
        "AllocationRound.ObjectionRuled",
        "Device.BillingNumberAssigned",
        "Device.BillingNumberWithdrawn",
        "Device.Changed",
        "Device.Corrected",
        "Device.DiscrepancyRecorded",
        "Device.DiscrepancyResolved",
        "Device.InstallationRecorded",
        "Device.LegacyNumberMapped",
        "Device.LicenceRecorded",
        "Device.TransferReceived",
    )
    tables = (
        "rm_capacity_devices",
        "rm_capacity_counts",
        "rm_capacity_institutions",
        "rm_capacity_population",
    )
    versioned: ClassVar[Mapping[str, Sequence[str]]] = {
        "rm_capacity_counts": ("institution", "modality"),
        "rm_capacity_institutions": ("institution",),
        "rm_capacity_population": ("province_key",),
    }
    ddl = (
        "CREATE TABLE IF NOT EXISTS rm_capacity_devices ("
        "device_id TEXT PRIMARY KEY, institution TEXT NOT NULL, modality TEXT NOT NULL, "
        "in_service INTEGER NOT NULL, linked INTEGER NOT NULL, decommissioned INTEGER NOT NULL)",
        # Counted per institution, so a province's figure follows its institutions when they move.
        "CREATE TABLE IF NOT EXISTS rm_capacity_counts ("
        "institution TEXT NOT NULL, modality TEXT NOT NULL, in_service BIGINT NOT NULL, "
        "linked BIGINT NOT NULL, "
        "PRIMARY KEY (institution, modality))",
        "CREATE TABLE IF NOT EXISTS rm_capacity_institutions ("
        "institution TEXT PRIMARY KEY, aggregate_id TEXT NOT NULL UNIQUE, province TEXT NOT NULL, "
        "region TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS rm_capacity_population ("
        "province_key TEXT PRIMARY KEY, province TEXT NOT NULL, population BIGINT NOT NULL, "
        "recognised_devices BIGINT, round_id TEXT NOT NULL, recorded_at TEXT NOT NULL)",
    )

    write_behind = True

    def handlers(self) -> dict[type[Aggregate.Event], Handler]:
        return {
            Institution.Registered: self.institution_registered,
            Institution.Updated: self.institution_updated,
            AllocationRound.Opened: self.round_opened,
            Device.Opened: self.opened,
            Device.Reported: self.in_service,
            Device.Backfilled: self.in_service,
            Device.Linked: self.linked,
            Device.Decommissioned: self.decommissioned,
        }

    def prefetch(self, tx: Batch, events: Sequence[Any]) -> None:
        devices = tx.rows("rm_capacity_devices")
        device_ids = {str(e.originator_id) for e in events if type(e) in DEVICE_EVENTS}
        devices.load("device_id", device_ids)
        # Counts are read by institution: its few rows, one per modality, say which exist.
        institutions = {e.institution for e in events if type(e) is Device.Opened}
        for device_id in device_ids:
            device = devices.get(device_id)
            if device is not None:
                institutions.add(device["institution"])
        tx.rows("rm_capacity_counts").load("institution", institutions)
        registered = tx.rows("rm_capacity_institutions")
        registered.load("institution", [e.institution for e in events if type(e) is Institution.Registered])
        registered.load(
            "aggregate_id", [str(e.originator_id) for e in events if type(e) is Institution.Updated]
        )
        tx.rows("rm_capacity_population").load(
            "province_key",
            [
                province_key(p["name"])
                for e in events
                if type(e) is AllocationRound.Opened
                for p in _provinces(e)
            ],
        )

    @staticmethod
    def institution_registered(tx: Batch, e: Institution.Registered) -> None:
        tx.rows("rm_capacity_institutions").insert(
            {
                "institution": e.institution,
                "aggregate_id": str(e.originator_id),
                "province": e.province,
                "region": e.region,
            }
        )

    @staticmethod
    def institution_updated(tx: Batch, e: Institution.Updated) -> None:
        changes = {key: e.changes[key] for key in ("province", "region") if key in e.changes}
        if not changes:
            return
        institutions = tx.rows("rm_capacity_institutions")
        row = institutions.find("aggregate_id", str(e.originator_id))
        if row is not None:
            institutions.update((row["institution"],), **changes)

    @staticmethod
    def round_opened(tx: Batch, e: AllocationRound.Opened) -> None:
        population = tx.rows("rm_capacity_population")
        for province in _provinces(e):
            recognised = province.get("recognised_devices")
            key = province_key(province["name"])
            population.get(key)  # a row replaced must be known, so that its version is closed
            population.put(
                {
                    "province_key": key,
                    "province": province["name"],
                    "population": int(province["population"]),
                    "recognised_devices": None if recognised is None else int(recognised),
                    "round_id": e.round_id,
                    "recorded_at": e.timestamp.isoformat(),
                }
            )

    @staticmethod
    def opened(tx: Batch, e: device_events.Opened) -> None:
        tx.rows("rm_capacity_devices").insert(
            {
                "device_id": str(e.originator_id),
                "institution": e.institution,
                "modality": e.modality,
                "in_service": 0,
                "linked": 0,
                "decommissioned": 0,
            }
        )

    def in_service(self, tx: Batch, e: device_events.Reported | device_events.Backfilled) -> None:
        device = self._device(tx, e)
        if device is not None and not device["in_service"] and not device["decommissioned"]:
            self._count(tx, device, in_service=1, linked=device["linked"])

    def linked(self, tx: Batch, e: device_events.Linked) -> None:
        device = self._device(tx, e)
        if device is not None and not device["linked"]:
            self._count(tx, device, in_service=device["in_service"], linked=1)

    def decommissioned(self, tx: Batch, e: device_events.Decommissioned) -> None:
        device = self._device(tx, e)
        if device is not None and not device["decommissioned"]:
            self._count(tx, device, in_service=0, linked=0, decommissioned=1)

    @staticmethod
    def _device(tx: Batch, e: Any) -> dict[str, Any] | None:
        return tx.rows("rm_capacity_devices").get(str(e.originator_id))

    @staticmethod
    def _count(
        tx: Batch, device: dict[str, Any], in_service: int, linked: int, decommissioned: int = 0
    ) -> None:
        """Moves one device to a new state, and its institution's counts with it."""
        counted_linked = linked and in_service
        was_linked = device["linked"] and device["in_service"]
        tx.rows("rm_capacity_devices").put(
            {
                **device,
                "in_service": in_service,
                "linked": linked,
                "decommissioned": decommissioned or device["decommissioned"],
            }
        )
        added = in_service - device["in_service"]
        added_linked = int(bool(counted_linked)) - int(bool(was_linked))
        counts = tx.rows("rm_capacity_counts")
        institution, modality = device["institution"], device["modality"]
        count = _count_of(counts.where("institution", institution), modality)
        counts.put(
            {
                "institution": institution,
                "modality": modality,
                "in_service": added + (0 if count is None else count["in_service"]),
                "linked": added_linked + (0 if count is None else count["linked"]),
            }
        )


DEVICE_EVENTS = frozenset(
    {Device.Opened, Device.Reported, Device.Backfilled, Device.Linked, Device.Decommissioned}
)
"""The device events whose handlers read the device's state."""


def _provinces(e: AllocationRound.Opened) -> list[dict[str, Any]]:
    """The provinces an `nmr` round was opened with, and their population."""
    if e.programme != "nmr":
        return []
    return list((e.policy_inputs or {}).get("provinces") or ())


def _count_of(counts: list[Row], modality: str) -> Row | None:
    """An institution's count for one modality, among its counts (read beforehand by institution)."""
    for count in counts:
        if count["modality"] == modality:
            return count
    return None


def per_100k(devices: int, population: int | None) -> str | None:
    """Two decimals, rounded half up, as text: exact and the same on every database."""
    if not population:
        return None
    value = Decimal(devices) * PER / Decimal(population)
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def capacity(tx: Transaction, modality: str | None = None, province: str | None = None) -> dict[str, Any]:
    """Devices in service per province and modality; with a modality, every known province, even at zero."""
    rows = tx.execute(
        # No aliases: as of a moment each table name stands for its versions then.
        "SELECT rm_capacity_institutions.province AS province, rm_capacity_institutions.region AS region, "
        "rm_capacity_counts.modality AS modality, SUM(rm_capacity_counts.in_service) AS devices, "
        "SUM(rm_capacity_counts.linked) AS linked FROM rm_capacity_counts "
        "LEFT JOIN rm_capacity_institutions "
        "ON rm_capacity_institutions.institution = rm_capacity_counts.institution "
        "GROUP BY rm_capacity_institutions.province, rm_capacity_institutions.region, "
        "rm_capacity_counts.modality"
    ).all()
    populations = {
        row["province_key"]: row
        for row in tx.execute(
            "SELECT province_key, province, population, recognised_devices, round_id "
            "FROM rm_capacity_population"
        ).all()
    }
    regions = {
        province_key(row["province"]): row["region"]
        for row in tx.execute("SELECT DISTINCT province, region FROM rm_capacity_institutions").all()
    }
    figures: dict[tuple[str | None, str], dict[str, Any]] = {}
    for row in rows:
        pair = (None if row["province"] is None else province_key(row["province"]), row["modality"])
        known = figures.setdefault(
            pair,
            {
                "province": row["province"],
                "region": row["region"],
                "modality": row["modality"],
                "devices": 0,
                "linked": 0,
            },
        )
        known["devices"] += int(row["devices"] or 0)
        known["linked"] += int(row["linked"] or 0)
    if modality is not None:
        names = {key: row["province"] for key, row in populations.items()}
        for row in tx.execute("SELECT DISTINCT province FROM rm_capacity_institutions").all():
            names.setdefault(province_key(row["province"]), row["province"])
        for known_key, name in names.items():
            figures.setdefault(
                (known_key, modality),
                {
                    "province": name,
                    "region": regions.get(known_key),
                    "modality": modality,
                    "devices": 0,
                    "linked": 0,
                },
            )
    items = []
    for (key, kind), figure in figures.items():
        if modality is not None and kind != modality:
            continue
        if province is not None and (key is None or key != province_key(province)):
            continue
        if figure["devices"] == 0 and modality is None:
            continue
        population = populations.get(key) if key is not None else None
        items.append(
            {
                **figure,
                "population": None if population is None else int(population["population"]),
                "population_from": None if population is None else population["round_id"],
                "per_100k": per_100k(
                    figure["devices"], None if population is None else int(population["population"])
                ),
            }
        )
    items.sort(key=lambda i: (i["province"] is None, i["province"] or "", i["modality"]))
    return {"items": items}
