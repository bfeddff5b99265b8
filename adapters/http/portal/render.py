"""Rendering the web application's pages in the reader's language, and the contract's errors in words."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from adapters.http.portal.i18n import DEFAULT, LANGUAGE_NAMES, LANGUAGES, translations

language: ContextVar[str] = ContextVar("language", default=DEFAULT)
"""The language of the request being answered (set by the language middleware)."""


def gettext(message: str, **values: Any) -> str:
    translated = translations(language.get()).gettext(message)
    return translated % values if values else translated


environment = Environment(
    loader=PackageLoader("adapters.http.portal", "templates"),
    autoescape=select_autoescape(),
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.globals.update(_=gettext, LANGUAGES=LANGUAGES, LANGUAGE_NAMES=LANGUAGE_NAMES)

ERROR_MESSAGES = {
    "malformed": "The request could not be read.",
    "schema": "This value is not valid.",
    "unauthorized": "Please sign in.",
    "rate_limited": "Too many requests: please wait a moment and try again.",
    "too_large": "The request is too large.",
    "unknown_type": "This action is not known.",
    "source_mismatch": "This action is not for your organisation.",
    "forbidden": "You may not do this.",
    "modality_not_in_scope": "This modality is not in scope.",
    "midid_checksum": "The check digits of this MID-ID are wrong.",
    "midid_unknown": "This MID-ID was never issued.",
    "midid_not_yours": "This MID-ID belongs to another institution.",
    "midid_already_linked": "This MID-ID is already linked to a device.",
    "midid_cancelled": "This MID-ID is cancelled.",
    "device_unknown": "No device is known for this MID-ID.",
    "device_decommissioned": "This device is decommissioned.",
    "requirements_not_met": "A requirement is not met.",
    "legacy_number_expired": "The legacy number is no longer valid.",
    "not_in_fanc_scope": "This device is not in FANC's scope.",
    "round_closed": "The round is closed.",
    "round_unknown": "This round is not known.",
    "conflict": "This conflicts with what the register holds.",
    "not_found": "Not found.",
    "nothing_changed": "Nothing was changed: change at least one field.",
    "internal_error": "Something went wrong on our side; nothing was changed. Please try again.",
}


def error_message(code: str) -> str:
    """The error code in the reader's language; an unknown code still says something useful."""
    return gettext(ERROR_MESSAGES.get(code, "The register refused this."))


def render(name: str, **context: Any) -> str:
    return environment.get_template(name).render(language=language.get(), **context)


WORDS = (
    # statuses of MID-IDs, devices, discrepancies, grants, rounds and decisions
    "issued", "linked", "cancelled", "free", "announced", "reported", "decommissioned",
    "open", "pending", "resolved", "all", "current", "revoked", "closed", "decided", "finalised",
    "granted", "refused", "intent_to_refuse", "final",
    # roles
    "local-admin", "requester", "reporter", "viewer", "operator", "admin", "auditor", "system",
    # uses of a device
    "clinical", "research", "mixed",
    # pages
    "MID-IDs", "Devices", "Report a device", "Discrepancies", "Download (XLSX)", "People", "Timeline",
    "Register as of", "Ledger", "Kadaster", "Rounds", "Work list", "Capacity", "Institutions",
)  # fmt: skip
"""Words the pages translate from data (statuses, roles, fields, kinds) and the navigation's labels."""

LABELS = {
    "modality": "Modality",
    "manufacturer": "Manufacturer",
    "model": "Model",
    "serial_number": "Serial number",
    "campus": "Campus",
    "installed_on": "Installed on",
    "use": "Use",
    "province": "Province",
    "licence_ref": "FANC licence",
    "billing_number": "Billing number",
    "linked_on": "Linked on",
    "decommissioned_on": "Decommissioned on",
    "statement_mismatch": "Statements disagree",
    "not_reported": "Not reported",
    "not_linked": "Not linked",
    "midid_unlinked": "MID-ID without a device",
    "billing_without_licence": "Billing without a licence",
    "billing_after_decommission": "Billing after decommissioning",
    "legacy_number_after_transition": "Legacy number after the transition",
    "institution": "Institution",
    "region": "Region",
    "population": "Population",
    "recognised_devices": "Recognised devices",
    "devices_per_100k": "Devices per 100,000 inhabitants",
    "nmr_index": "MRI index",
    "nmr_index_exact": "MRI index (exact)",
    "rank": "Rank",
    "place": "Place",
    "province_rank": "Province's rank",
    "activity": "Activity",
    "outcome": "Outcome",
    "justified_activity_per_device": "Justified activity per device",
    "has_service_on_other_campus": "Service on another campus",
    "programme_figure": "Programme figure",
    "filled": "Filled",
    "fill_rate": "Fill rate",
    "fill_rate_exact": "Fill rate (exact)",
    "applied_at": "Applied at",
    "provinces": "Provinces",
    "regions": "Regions",
    "priority": "Priority",
    "institutions": "Institutions",
    "hospitals": "Hospitals",
    "flemish": "Flemish Region",
    "brussels": "Brussels-Capital Region",
    "wallonia": "Walloon Region",
}
"""English words for the contract's field names and discrepancy kinds."""


def label(name: str) -> str:
    """A field name, status or kind from the data, in the reader's language."""
    return gettext(LABELS.get(name, name))


environment.globals.update(label=label)
environment.globals.update(error_message=error_message)
