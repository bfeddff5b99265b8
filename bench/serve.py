"""`kadaster serve` measured from outside, as a user runs it: its embedded nats-server, every role.

In one run, on the same nats-server: the ingest rate of a backlog of commands against a bare
pull-and-ack consumer of the same messages; MID-ID RPC latency one request at a time at rest,
against a naive one-save endpoint; and RPC latency at a fixed rate.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nats
from nats.aio.client import Client as NATS

from adapters.nats.client import KadasterClient
from adapters.nats.server import NatsServer, free_port
from adapters.nats.streams import OUTCOME_STREAM, ensure_streams
from bench.common import Figure, at_least, at_most, database, summary, value_at_most
from bench.ingest import bare_rate, publish_all
from bench.rpc import RATE_TIMEOUT, NaivePeer, Samples, fixed_rate, sequential
from services.register import Register, event_store_env


def preload(store_dir: Path, port: int, count: int) -> None:
    """Fills the embedded server's store with `count` commands before `serve` starts on it."""

    async def fill() -> None:
        with NatsServer(store_dir=store_dir, port=port, sync_always=True) as server:
            nc = await nats.connect(server.url)
            js = nc.jetstream()
            await ensure_streams(js, replicas=1)
            await publish_all(js, count)
            await nc.close()

    asyncio.run(fill())


def start_serve(data_dir: Path, port: int, mode: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KADASTER_")}
    env.update(
        KADASTER_EMBEDDED_NATS_PORT=str(port),
        KADASTER_DATA_DIR=str(data_dir),
        KADASTER_HTTP_PORT=str(free_port()),
        KADASTER_LOG_FORMAT="json",
        KADASTER_LOG_LEVEL="warning",
        KADASTER_SERVE_MODE=mode,
    )
    return subprocess.Popen(
        [sys.executable, "-m", "adapters.cli", "serve"],
        env=env,
        cwd=data_dir,
        stdout=subprocess.DEVNULL,
        stderr=(data_dir / "serve.log").open("wb"),
    )


async def connect(url: str, timeout: float = 60.0) -> NATS:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await nats.connect(url, connect_timeout=2, allow_reconnect=False, error_cb=quiet)
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def quiet(error: Exception) -> None:
    """A server still starting refuses connections: expected while waiting, not worth a traceback."""


async def ingest_rate(nc: NATS, count: int, timeout: float = 600.0) -> float:
    """Commands per second from the moment a tenth of the outcomes are out until the last one is."""
    js = nc.jetstream()
    deadline = time.monotonic() + timeout
    began: float | None = None
    while time.monotonic() < deadline:
        try:
            out = int((await js.stream_info(OUTCOME_STREAM)).state.messages)
        except Exception:
            out = 0
        now = time.perf_counter()
        if began is None and out >= count // 10:
            began, first = now, out
        if began is not None and out >= count:
            return (out - first) / max(now - began, 1e-9)
        await asyncio.sleep(0.02)
    raise TimeoutError(f"serve did not answer {count} commands within {timeout:g} s")


async def ready(nc: NATS, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reply = await nc.request("$SRV.PING.kadaster", b"", timeout=1)
            if reply.data:
                return
        except Exception:
            pass
        await asyncio.sleep(0.2)
    raise TimeoutError("serve did not answer $SRV.PING.kadaster")


async def naive_at_rest(url: str, count: int) -> Samples:
    with database("sqlite") as db:
        nc = await nats.connect(url)
        peer = NaivePeer(Register(env=event_store_env(db)))
        await peer.start(nc)

        async def naive(i: int) -> None:
            body = json.dumps({"id": f"n{i}", "source": "hospital/H001", "data": {"modality": "CT"}})
            await nc.request("bench.naive.issue", body.encode(), timeout=30)

        samples = await sequential(naive, count)
        await peer.stop()
        await nc.close()
        peer.register.close()
    return samples


async def measure_running(
    url: str, count: int, one_at_a_time: int, rate: int, seconds: float, mode: str
) -> list[Figure]:
    nc = await connect(url)
    try:
        ours_ingest = await ingest_rate(nc, count)
        bare = await bare_rate(nc.jetstream(), count)
        await ready(nc)
        client = await KadasterClient.connect(url, "hospital/H001")

        async def ours(i: int) -> None:
            await client.issue_mid_id("CT", command_id=f"serve-rpc-{i}", timeout=30, attempts=1)

        async def ours_at_rate(i: int) -> None:
            await client.issue_mid_id("CT", command_id=f"serve-rpc-{i}", timeout=RATE_TIMEOUT, attempts=1)

        await asyncio.sleep(2.0)  # at rest: the backlog's read models and relay work are done
        at_rest = await sequential(ours, one_at_a_time)
        naive = await naive_at_rest(url, one_at_a_time)
        at_rate = await fixed_rate(ours_at_rate, rate, seconds, 10**6)
        await client.close()
    finally:
        await nc.close()
    rest, naive_rest, loaded = (
        summary(at_rest.latencies),
        summary(naive.latencies),
        summary(at_rate.latencies),
    )
    note = (
        f"{at_rate.timed_out} unanswered in {RATE_TIMEOUT:g} s (counted as that long)"
        if at_rate.timed_out
        else ""
    )
    title = "serve" if mode == "processes" else "serve in one process"
    figures = [
        Figure(
            f"{title} ingest vs bare pull+ack",
            "cmd/s",
            ours_ingest,
            bare,
            "bare nats-py pull+ack, same server",
            (at_least(0.25),),
            note=f"a backlog of {count:,} commands",
        ),
        Figure(
            f"{title} MID-ID RPC at rest p99",
            "ms",
            rest["p99"],
            naive_rest["p99"],
            "naive one-save endpoint",
            (value_at_most(10.0), at_most(2.0)),
            higher_is_better=False,
            extra={"p50": round(rest["p50"], 3), "samples": len(at_rest.latencies)},
        ),
        Figure(
            f"{title} MID-ID RPC {rate}/s for {seconds:g}s p99",
            "ms",
            loaded["p99"],
            None,
            "",
            (value_at_most(10.0),),
            higher_is_better=False,
            note=note,
            extra={"p50": round(loaded["p50"], 3), "samples": len(at_rate.latencies)},
        ),
    ]
    if mode != "processes":
        # The one-process shape is shown for comparison only; the targets are the supervisor's.
        for figure in figures:
            figure.goals = ()
    return figures


def measure(count: int, one_at_a_time: int, rate: int, seconds: float) -> list[Figure]:
    """The supervisor (the default), then every role in one process for comparison, each on a
    fresh store and server of its own."""
    figures: list[Figure] = []
    for mode in ("processes", "single"):
        figures += measure_mode(count, one_at_a_time, rate, seconds, mode)
    return figures


def measure_mode(count: int, one_at_a_time: int, rate: int, seconds: float, mode: str) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="kadaster-bench-serve-") as directory:
        data_dir = Path(directory)
        port = free_port()
        preload((data_dir / "nats").resolve(), port, count)
        process = start_serve(data_dir, port, mode)
        try:
            url = f"nats://127.0.0.1:{port}"
            return asyncio.run(measure_running(url, count, one_at_a_time, rate, seconds, mode))
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
