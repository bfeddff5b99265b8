"""What a published message must be: a CloudEvent the official SDK reads, shaped as the AsyncAPI says."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import jsonschema_rs
from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.formats.json import JSONFormat

from adapters.contract.docs import asyncapi_document

DOCUMENT = asyncapi_document()


def _address_pattern(address: str) -> re.Pattern[str]:
    parts = [r"[^.]+" if re.fullmatch(r"{\w+}", p) else re.escape(p) for p in address.split(".")]
    return re.compile(r"\.".join(parts) + "$")


CHANNELS = [
    (key, _address_pattern(channel["address"]), channel)
    for key, channel in DOCUMENT["channels"].items()
    if channel["address"]
]


def channel_of(subject: str) -> tuple[str, dict[str, Any]]:
    """The one channel of the AsyncAPI document whose address the subject is on."""
    found = [(key, channel) for key, pattern, channel in CHANNELS if pattern.match(subject)]
    assert len(found) == 1, (subject, [key for key, _ in found])
    return found[0]


@cache
def payload_validator(message_key: str, part: str = "payload") -> Any:
    """A JSON Schema validator of one message's payload (or headers), references resolved in the document."""
    root = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": f"#/components/messages/{message_key.replace('/', '~1')}/{part}",
        "components": DOCUMENT["components"],
    }
    return jsonschema_rs.Draft202012Validator(root, validate_formats=True)


def schema_problems(subject: str, body: bytes) -> list[str]:
    """Why the body fits none of the messages of its subject's channel (empty: it fits one)."""
    _, channel = channel_of(subject)
    instance = json.loads(body)
    found: list[str] = []
    for reference in channel["messages"].values():
        key = reference["$ref"].rsplit("/", 1)[1]
        errors = [
            f"{key}: {e.instance_path}: {e.message}" for e in payload_validator(key).iter_errors(instance)
        ]
        if not errors:
            return []
        found += errors
    return found


def read_cloudevent(body: bytes) -> BaseCloudEvent:
    """The official CloudEvents SDK's reading of a structured-mode message (it raises on a bad one)."""
    return JSONFormat().read(None, body)
