"""The command pipeline: bytes in, one outcome out, effects recorded exactly once."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from eventsourcing.persistence import PersistenceError, RecordConflictError, Tracking
from pydantic import ValidationError

from domain.command_record import CommandRecord, command_record_id, handled_event
from domain.errors import DomainError, ErrorDetail
from domain.identifiers import Source
from services.cmd_access import check_person
from services.commands import Cause, CommandSpec, load_catalogue
from services.envelope import MAX_MESSAGE_BYTES, Envelope, Outcome, binary_mode_attributes
from services.register import INGEST_TRACKING, Register
from services.unit_of_work import UnitOfWork

log = structlog.get_logger("kadaster.commands")

STREAM = "stream"
RPC = "rpc"
MAX_CONFLICT_RETRIES = 8


@dataclass(frozen=True)
class Inbound:
    """A message as it arrived, before anything is believed about it."""

    body: bytes
    subject: str
    channel: str = STREAM
    stream_sequence: int | None = None
    msg_id: str | None = None
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    headers: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Handled:
    """What became of one inbound message."""

    outcome: dict[str, Any]
    outcome_subject: str
    duplicate: bool
    inbound: Inbound


@dataclass(frozen=True)
class SubjectParts:
    sender: Source | None
    command_type: str | None


def parse_subject(subject: str) -> SubjectParts:
    """`kadaster.cmd.<kind>[.<party>].<type>` or `kadaster.rpc.<kind>.<party>.<type>`."""
    parts = subject.split(".")
    if len(parts) < 4 or parts[0] != "kadaster" or parts[1] not in ("cmd", "rpc"):
        return SubjectParts(None, None)
    kind = parts[2]
    try:
        if kind in ("hospital", "supplier"):
            if len(parts) < 5:
                return SubjectParts(None, None)
            return SubjectParts(Source.parse(f"{kind}/{parts[3]}"), ".".join(parts[4:]))
        return SubjectParts(Source.parse(kind), ".".join(parts[3:]))
    except DomainError:
        return SubjectParts(None, None)


def _encode_body(body: bytes) -> tuple[str, str]:
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), "base64"


EXPECTED_FORMATS = {
    "date": "expected a date as YYYY-MM-DD, e.g. 2024-04-23",
    "datetime": "expected an ISO 8601 moment, e.g. 2024-04-23T10:00:00Z",
}
"""What a person should have written, for the date and moment errors pydantic words tersely."""


def _expected_format(error_type: str) -> str | None:
    if error_type.startswith("date_"):
        return EXPECTED_FORMATS["date"]
    if error_type.startswith("datetime_"):
        return EXPECTED_FORMATS["datetime"]
    return None


def _validation_details(error: ValidationError) -> list[ErrorDetail]:
    details = []
    for item in error.errors(include_url=False):
        location = ".".join(str(p) for p in ("data", *item["loc"]))
        code = item["type"] if item["type"] in ("midid_checksum", "modality_not_in_scope") else "schema"
        expected = _expected_format(item["type"])
        message = f"{location}: {item['msg']}" + (f" ({expected})" if expected else "")
        details.append(ErrorDetail(code, message, location))
    return details


class Rejection(Exception):
    def __init__(self, *details: ErrorDetail) -> None:
        super().__init__(details[0].message)
        self.details = details


def _json(body: bytes, field: str | None = None) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as error:
        raise Rejection(ErrorDetail("malformed", f"not UTF-8 JSON: {error}", field)) from None
    except RecursionError:
        raise Rejection(ErrorDetail("malformed", "JSON nested too deeply", field)) from None


@dataclass
class _Parsed:
    inbound: Inbound
    sender: Source | None
    record_key: str
    command_id: str | None
    command_type: str | None
    envelope: Envelope | None = None
    spec: CommandSpec | None = None
    data: Any = None
    person: str | None = None
    rejection: tuple[ErrorDetail, ...] = ()
    keyed_by: str | None = None
    """How an unreadable message's key was found: `nats_msg_id` or `stream_sequence`."""


STREAM_KEY_PREFIX = "stream-seq:"


def fallback_key(inbound: Inbound, sender: Source | None) -> tuple[str, str | None]:
    """The key of a message whose envelope cannot be read, so its outcome can still be looked up.

    The sender's own id when its `Nats-Msg-Id` is `<source>:<id>`, else the message's place
    in the stream (`stream-seq:<n>`); a request-reply message without either gets a random key.
    """
    if inbound.msg_id and sender is not None:
        own = inbound.msg_id.removeprefix(f"{sender}:")
        if own != inbound.msg_id and 0 < len(own) <= 128:
            return own, "nats_msg_id"
    if inbound.stream_sequence is not None:
        return f"{STREAM_KEY_PREFIX}{inbound.stream_sequence}", "stream_sequence"
    return f"unkeyed:{uuid.uuid4()}", None


class CommandProcessor:
    """Runs a batch of inbound messages against the register and records everything at once.

    Synchronous by design (the event store is); adapters call it from a worker thread.
    """

    def __init__(self, register: Register, tracking_name: str = INGEST_TRACKING) -> None:
        self.register = register
        self.tracking_name = tracking_name
        self.catalogue = load_catalogue()

    def process(self, batch: Sequence[Inbound]) -> list[Handled]:
        parsed = [self._parse(inbound) for inbound in batch]
        for attempt in range(MAX_CONFLICT_RETRIES):
            try:
                return self._process_once(parsed)
            except RecordConflictError:
                # Another writer took a MID-ID number or handled one of these commands first.
                log.info("batch_conflict_retry", attempt=attempt + 1, size=len(batch))
        return self._process_once(parsed)

    def give_up(self, inbound: Inbound, deliveries: int) -> Handled:
        """Settles a message the register could not handle after `deliveries` tries: rejected and kept
        (its bytes too) under its key, so it is acknowledged instead of redelivered forever."""
        parsed = self._parse(inbound)
        detail = ErrorDetail(
            "internal_error",
            f"the register could not settle this message after {deliveries} deliveries; it is kept "
            "for an operator to look at",
        )
        parsed.rejection = (detail,)
        parsed.spec = None
        for attempt in range(MAX_CONFLICT_RETRIES):
            try:
                return self._process_once([parsed])[0]
            except RecordConflictError:
                log.info("give_up_conflict_retry", attempt=attempt + 1)
        return self._process_once([parsed])[0]

    # parsing: nothing here touches the event store

    def _parse(self, inbound: Inbound) -> _Parsed:
        subject = parse_subject(inbound.subject)
        sender = subject.sender
        command_id, keyed_by = fallback_key(inbound, sender)
        known = command_id if keyed_by is not None else None
        parsed = _Parsed(inbound, sender, command_id, known, subject.command_type, keyed_by=keyed_by)
        try:
            envelope = self._parse_envelope(inbound.body, inbound.headers)
            parsed.command_id = envelope.id
            parsed.record_key = envelope.id
            parsed.keyed_by = None
            parsed.command_type = envelope.type
            parsed.envelope = envelope
            parsed.person = envelope.person
            self._check_sender(parsed, subject, envelope)
            parsed.spec = self._spec_for(envelope, sender)
            parsed.data = self._parse_data(parsed.spec, envelope)
        except Rejection as rejection:
            parsed.rejection = rejection.details
        except DomainError as error:
            parsed.rejection = error.details
        return parsed

    def _parse_envelope(self, body: bytes, headers: Mapping[str, str] | None = None) -> Envelope:
        if len(body) > MAX_MESSAGE_BYTES:
            raise Rejection(ErrorDetail("malformed", f"message of {len(body)} bytes exceeds 1 MiB"))
        attributes = binary_mode_attributes(headers)
        if attributes is not None:
            # Binary mode: the attributes travel as `ce-*` headers, the body is the data alone.
            document: Any = {**attributes, "data": _json(body, "data") if body.strip() else None}
        else:
            document = _json(body)
        if not isinstance(document, dict):
            raise Rejection(ErrorDetail("malformed", "a CloudEvents envelope is a JSON object"))
        try:
            return Envelope.model_validate(document)
        except ValidationError as error:
            first = error.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "envelope"
            raise Rejection(
                ErrorDetail("malformed", f"not a CloudEvents 1.0 envelope: {where}: {first['msg']}", where)
            ) from None

    def _check_sender(self, parsed: _Parsed, subject: SubjectParts, envelope: Envelope) -> None:
        if parsed.sender is None:
            raise Rejection(
                ErrorDetail("source_mismatch", f"subject {parsed.inbound.subject} names no sender", "source")
            )
        claimed = Source.parse(envelope.source)
        if claimed != parsed.sender:
            raise Rejection(
                ErrorDetail(
                    "source_mismatch",
                    f"source {envelope.source} does not match the subject's sender {parsed.sender}",
                    "source",
                )
            )
        if subject.command_type != envelope.type:
            raise Rejection(
                ErrorDetail(
                    "source_mismatch",
                    f"type {envelope.type} does not match the subject's type {subject.command_type}",
                    "type",
                )
            )

    def _spec_for(self, envelope: Envelope, sender: Source | None) -> CommandSpec:
        spec = self.catalogue.get(envelope.type)
        if spec is None:
            raise Rejection(ErrorDetail("unknown_type", f"no command of type {envelope.type}", "type"))
        assert sender is not None
        if sender.kind not in spec.senders:
            allowed = ", ".join(sorted(spec.senders))
            raise Rejection(
                ErrorDetail("forbidden", f"{envelope.type} is sent by {allowed}, not by {sender}", "source")
            )
        return spec

    def _parse_data(self, spec: CommandSpec, envelope: Envelope) -> Any:
        if not isinstance(envelope.data, dict):
            raise Rejection(ErrorDetail("schema", "data must be a JSON object", "data"))
        try:
            return spec.model.model_validate(envelope.data)
        except ValidationError as error:
            raise Rejection(*_validation_details(error)) from None

    # handling: one attempt at the whole batch

    def _process_once(self, batch: list[_Parsed]) -> list[Handled]:
        uow = UnitOfWork(self.register)
        results: list[Handled] = []
        this_batch: dict[str, dict[str, Any]] = {}
        records: list[CommandRecord.Handled] = []
        newest_sequence: int | None = None
        senders = [str(item.sender) if item.sender else "unknown" for item in batch]
        keys = [
            command_record_id(sender, item.record_key) for sender, item in zip(senders, batch, strict=True)
        ]
        recorded = self.register.created(keys)
        # Said once the batch is recorded: a batch retried after a conflict must not log twice.
        said: list[tuple[str, dict[str, Any]]] = []
        for item, sender, key in zip(batch, senders, keys, strict=True):
            subject = item.sender.outcome_subject if item.sender else "kadaster.outcome.unknown"
            stored = recorded.get(key)
            earlier = this_batch.get(str(key)) or (stored.outcome if stored is not None else None)  # type: ignore[attr-defined]
            if earlier is not None:
                results.append(Handled(earlier, subject, True, item.inbound))
                said.append(("command_duplicate", {"command_id": item.command_id, "sender": sender}))
                continue
            outcome = self._decide(uow, item, sender, said)
            if item.person is not None:
                outcome["person"] = item.person
            body, body_encoding = _encode_body(item.inbound.body)
            record = handled_event(
                sender=sender,
                command_id=item.record_key,
                command_type=item.command_type,
                subject=item.inbound.subject,
                channel=item.inbound.channel,
                stream_sequence=item.inbound.stream_sequence,
                received_at=item.inbound.received_at.isoformat(),
                sent_at=item.envelope.time.isoformat() if item.envelope and item.envelope.time else None,
                body=body,
                body_encoding=body_encoding,
                outcome=outcome,
                attributes=binary_mode_attributes(item.inbound.headers),
                person=item.person,
            )
            records.append(record)
            this_batch[str(key)] = outcome
            results.append(Handled(outcome, subject, False, item.inbound))
            if item.inbound.stream_sequence is not None:
                newest_sequence = max(newest_sequence or 0, item.inbound.stream_sequence)
        if records:
            tracking = Tracking(self.tracking_name, newest_sequence) if newest_sequence is not None else None
            self.register.record([*uow.events, *records], uow.aggregates, tracking)
        for event, fields in said:
            log.info(event, **fields)
        return results

    def _decide(
        self, uow: UnitOfWork, item: _Parsed, sender: str, said: list[tuple[str, dict[str, Any]]]
    ) -> dict[str, Any]:
        about = {"command_id": item.command_id, "type": item.command_type, "sender": sender}
        if item.rejection:
            said.append(("command_rejected", {**about, "codes": [d.code for d in item.rejection]}))
            outcome = Outcome.rejected(item.command_id, sender, item.command_type, item.rejection).model_dump(
                mode="json"
            )
            if item.keyed_by is not None:
                # No envelope id could be read: the outcome says what it is filed under instead.
                outcome["keyed_by"] = item.keyed_by
                outcome["stream_sequence"] = item.inbound.stream_sequence
            return outcome
        assert item.spec is not None and item.envelope is not None and item.sender is not None
        cause = Cause(
            item.sender, item.envelope.id, item.envelope.time, item.inbound.received_at, item.person
        )
        try:
            check_person(uow, cause, item.spec.type, known_only=True)
            result = item.spec.handler(uow, item.data, cause)
        except DomainError as error:
            uow.rollback_command()
            said.append(("command_rejected", {**about, "codes": [d.code for d in error.details]}))
            return Outcome.rejected(item.command_id, sender, item.command_type, error.details).model_dump(
                mode="json"
            )
        except (PersistenceError, RecordConflictError):
            raise
        except Exception as error:  # a poison message: the handler itself failed
            uow.rollback_command()
            log.exception("command_poison", **about)
            detail = ErrorDetail(
                "internal_error", f"the register could not handle this command: {type(error).__name__}"
            )
            return Outcome.rejected(item.command_id, sender, item.command_type, [detail]).model_dump(
                mode="json"
            )
        caused = uow.commit_command()
        # Ties the command to the events it caused: `<event type> <aggregate id>:<version>`.
        events = [f"{type(e).__qualname__} {e.originator_id}:{e.originator_version}" for e in caused]
        said.append(("command_accepted", {**about, "events": events}))
        return Outcome.accepted(item.envelope.id, sender, item.spec.type, result).model_dump(mode="json")
