"""The record of one received command and its outcome, kept forever under (source, id)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event
from eventsourcing.utils import get_topic

from domain.identifiers import stable_id


def command_record_id(sender: str, command_id: str) -> UUID:
    """Idempotency key: the sender (as the subject says) and the envelope id."""
    return stable_id("command", f"{sender}\x1f{command_id}")


class CommandRecord(Aggregate):
    """A command as it arrived (original bytes, and its `ce-*` headers in binary mode) and its one outcome.

    Its id is derived from (sender, envelope id), so a second recording of the same command
    is refused by the event store itself: the pair is the idempotency key forever.
    """

    @staticmethod
    def create_id(sender: str, command_id: str) -> UUID:
        return command_record_id(sender, command_id)

    class Handled(Aggregate.Created):
        sender: str
        command_id: str
        command_type: str | None
        subject: str
        channel: str
        stream_sequence: int | None
        received_at: str
        body: str
        body_encoding: str
        outcome: dict[str, Any]
        attributes: dict[str, str] | None = None
        sent_at: str | None = None
        """The envelope's `time`: the sender's claim, kept beside `received_at`, the register's moment."""
        person: str | None = None
        """The envelope's `person`: who entered the command, where a person did."""

    @event(Handled)
    def __init__(
        self,
        sender: str,
        command_id: str,
        command_type: str | None,
        subject: str,
        channel: str,
        stream_sequence: int | None,
        received_at: str,
        body: str,
        body_encoding: str,
        outcome: dict[str, Any],
        attributes: dict[str, str] | None = None,
        sent_at: str | None = None,
        person: str | None = None,
    ) -> None:
        self.sender = sender
        self.command_id = command_id
        self.command_type = command_type
        self.subject = subject
        self.channel = channel
        self.stream_sequence = stream_sequence
        self.received_at = received_at
        self.body = body
        self.body_encoding = body_encoding
        self.outcome = outcome
        # In binary mode the envelope's attributes came as headers, which the bytes do not hold.
        self.attributes = attributes
        self.sent_at = sent_at
        self.person = person

    @property
    def accepted(self) -> bool:
        return bool(self.outcome.get("status") == "accepted")


def handled_event(sender: str, command_id: str, **fields: Any) -> CommandRecord.Handled:
    """The record's one event, made without building the aggregate that nothing here reads.

    `fields`: the rest of `CommandRecord.Handled`'s fields, by name. The same event, field for
    field, as `CommandRecord(...)` would record (and it loads back as a `CommandRecord`); the
    aggregate's construction was the largest single cost of a command.
    """
    return CommandRecord.Handled(
        originator_topic=_TOPIC,
        originator_id=command_record_id(sender, command_id),
        originator_version=CommandRecord.INITIAL_VERSION,
        timestamp=CommandRecord.Handled.create_timestamp(),
        **{"sender": sender, "command_id": command_id, **fields},
    )


_TOPIC = get_topic(CommandRecord)
