"""Building blocks of an AsyncAPI 3.0 document: references, messages, channels and operations."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any


def ref(*path: str) -> dict[str, str]:
    """A JSON reference to a place inside the same document."""
    return {"$ref": "#/" + "/".join(part.replace("~", "~0").replace("/", "~1") for part in path)}


def message_object(
    name: str, title: str, summary: str, payload: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """An AsyncAPI message object with a JSON payload."""
    return {
        "name": name,
        "title": title,
        "summary": summary,
        "contentType": "application/json",
        **extra,
        "payload": payload,
    }


class AsyncApiBuilder:
    """Channels and the service's operations on them, with every reference pointing inside the document."""

    def __init__(self) -> None:
        self.channels: dict[str, Any] = {}
        self.operations: dict[str, Any] = {}

    def channel(self, key: str, address: str | None, message_keys: Sequence[str], description: str) -> None:
        entry: dict[str, Any] = {
            "address": address,
            "description": description,
            "messages": {m: ref("components", "messages", m) for m in message_keys},
        }
        names = re.findall(r"{(\w+)}", address or "")
        if names:
            entry["parameters"] = {name: ref("components", "parameters", name) for name in names}
        self.channels[key] = entry

    def operation(
        self, action: str, channel_key: str, summary: str, description: str, reply_channel: str | None = None
    ) -> None:
        """Named after its channel: each channel has exactly one operation of the service."""
        entry: dict[str, Any] = {
            "action": action,
            "channel": ref("channels", channel_key),
            "summary": summary,
            "description": description,
            "messages": self._messages_of(channel_key),
        }
        if reply_channel is not None:
            entry["reply"] = {
                "channel": ref("channels", reply_channel),
                "messages": self._messages_of(reply_channel),
            }
        self.operations[channel_key] = entry

    def _messages_of(self, channel_key: str) -> list[dict[str, str]]:
        return [ref("channels", channel_key, "messages", m) for m in self.channels[channel_key]["messages"]]
