"""Read-model lag under a sustained stream: how far, and how long, the read models trail the store.

The ingest and projector roles run as processes of their own against a nats-server of the run's
own; commands are published at a fixed rate while the event store's head and the read models'
lowest position are sampled. The time lag of a sample is how long it took until every read model
had applied what the store held at that moment.

    python -m bench.projection_lag [--rate 300] [--seconds 30] [--store sqlite|postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import nats

from bench.common import POSTGRES_DSN, issue_envelope, nats_server, summary
from projections.store import ReadModelStore
from services.register import Register, event_store_env

ROLES = ("ingest", "projector")


def _lowest_position(store: ReadModelStore) -> int:
    with store.reading() as tx:
        rows = tx.execute("SELECT position FROM rm_positions").all()
    return min((int(r["position"]) for r in rows), default=0)


async def measure(store_kind: str, rate: int, seconds: float) -> dict[str, Any]:
    with nats_server() as server, tempfile.TemporaryDirectory(prefix="kadaster-lag-") as directory:
        schema = None
        if store_kind == "postgres":
            import psycopg

            schema = f"bench_lag_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {schema}")
            database_url = f"{POSTGRES_DSN}?schema={schema}"
            read_model_url = database_url
        else:
            database_url = f"sqlite:///{Path(directory) / 'kadaster.db'}"
            read_model_url = f"sqlite:///{Path(directory) / 'kadaster.readmodels.db'}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("KADASTER_")}
        env.update(
            KADASTER_NATS_URL=server.url,
            KADASTER_DATABASE_URL=database_url,
            KADASTER_READMODEL_URL=read_model_url,
            KADASTER_DATA_DIR=str(Path(directory) / "data"),
            KADASTER_LOG_FORMAT="json",
            KADASTER_LOG_LEVEL="warning",
            KADASTER_HTTP_PORT="0",
            KADASTER_STREAM_REPLICAS="1",
        )
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "adapters.cli", role],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=(Path(directory) / f"{role}.log").open("wb"),
            )
            for role in ROLES
        ]
        nc = await nats.connect(server.url)
        register = None
        store = None
        try:
            js = nc.jetstream()
            deadline = time.monotonic() + 60
            while True:
                try:
                    await js.consumer_info("KADASTER_CMD", "kadaster-ingest")
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)
            # The roles may still be creating the tables of a fresh store: wait for them.
            while register is None:
                try:
                    register = Register(env=event_store_env(database_url))
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)
            store = ReadModelStore(read_model_url)
            while True:
                try:
                    _lowest_position(store)
                    break
                except Exception:
                    await asyncio.sleep(0.2)
            samples: list[tuple[float, int, int]] = []
            loop = asyncio.get_running_loop()

            async def sample(stop: asyncio.Event) -> None:
                while not stop.is_set():
                    head = await loop.run_in_executor(None, register.position)
                    lowest = await loop.run_in_executor(None, _lowest_position, store)
                    samples.append((time.monotonic(), head, lowest))
                    await asyncio.sleep(0.05)

            stop = asyncio.Event()
            sampler = asyncio.create_task(sample(stop))
            total = int(rate * seconds)
            began = time.monotonic()
            for i in range(total):
                subject, body, msg_id = issue_envelope(i)
                await js.publish(subject, body, headers={"Nats-Msg-Id": msg_id})
                wait = began + (i + 1) / rate - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            sent_seconds = time.monotonic() - began
            # Let the read models finish what was sent, then stop sampling.
            finish = time.monotonic() + 120
            while time.monotonic() < finish:
                if samples and samples[-1][2] >= samples[-1][1] and samples[-1][1] >= total:
                    break
                await asyncio.sleep(0.1)
            stop.set()
            await sampler
        finally:
            await nc.close()
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
            if store is not None:
                store.close()
            if register is not None:
                register.close()
            if schema is not None:
                import psycopg

                with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA {schema} CASCADE")
    loaded = [s for s in samples if s[0] - began <= sent_seconds]
    events_behind = [float(head - lowest) for _, head, lowest in loaded]
    time_behind = []
    for index, (moment, head, _) in enumerate(loaded):
        caught = next((t for t, _, lowest in samples[index:] if lowest >= head), None)
        if caught is not None:
            time_behind.append((caught - moment) * 1000)
    return {
        "store": store_kind,
        "rate_per_second": rate,
        "seconds": round(sent_seconds, 1),
        "commands": total,
        "events_behind": summary(events_behind),
        "ms_behind": summary(time_behind),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=int, default=300, help="commands per second (default 300)")
    parser.add_argument("--seconds", type=float, default=30, help="how long to send (default 30)")
    parser.add_argument("--store", choices=["sqlite", "postgres"], action="append")
    args = parser.parse_args()
    results = [asyncio.run(measure(kind, args.rate, args.seconds)) for kind in args.store or ["sqlite"]]
    for result in results:
        events, ms = result["events_behind"], result["ms_behind"]
        print(
            f"{result['store']:<9} {result['rate_per_second']}/s for {result['seconds']}s: "
            f"read models behind by p50 {events['p50']:.0f} / p99 {events['p99']:.0f} events, "
            f"p50 {ms['p50']:.0f} ms / p99 {ms['p99']:.0f} ms"
        )
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
