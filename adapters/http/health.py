"""Health checks of a role: NATS reachable, JetStream streams present, event store answering."""

from __future__ import annotations

import asyncio

import nats

from adapters.bootstrap import open_register
from adapters.config import Settings
from adapters.nats.streams import CMD_STREAM, EVT_STREAM, INGEST_CONSUMER, OUTCOME_STREAM


async def check_health(settings: Settings, role: str, nats_url: str, timeout: float = 5.0) -> list[str]:
    problems: list[str] = []
    options: dict[str, object] = {"connect_timeout": timeout, "allow_reconnect": False}
    if settings.nats_user:
        options.update(user=settings.nats_user, password=settings.nats_password)
    if settings.nats_creds:
        options["user_credentials"] = str(settings.nats_creds)
    try:
        nc = await nats.connect(nats_url.split(","), **options)
    except Exception as error:
        return [f"NATS at {nats_url} unreachable: {error}"]
    try:
        js = nc.jetstream()
        for stream in (CMD_STREAM, OUTCOME_STREAM, EVT_STREAM):
            try:
                await js.stream_info(stream)
            except Exception as error:
                problems.append(f"stream {stream}: {type(error).__name__}")
        if role in ("ingest", "serve"):
            try:
                await js.consumer_info(CMD_STREAM, INGEST_CONSUMER)
            except Exception as error:
                problems.append(f"consumer {INGEST_CONSUMER}: {type(error).__name__}")
        if role in ("rpc", "api", "serve"):
            try:
                await nc.request("$SRV.PING.kadaster", b"", timeout=timeout)
            except Exception as error:
                problems.append(f"micro service kadaster does not answer: {type(error).__name__}")
    finally:
        await nc.close()
    problems.extend(await asyncio.get_running_loop().run_in_executor(None, _event_store_problems, settings))
    return problems


def _event_store_problems(settings: Settings) -> list[str]:
    try:
        register = open_register(settings)
    except Exception as error:
        return [f"event store unreachable: {error}"]
    try:
        register.position()
    except Exception as error:
        return [f"event store does not answer: {error}"]
    finally:
        register.close()
    return []
