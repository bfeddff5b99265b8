"""One hostile party: a hospital floods malformed, oversized and backdated messages; another keeps sending."""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
from nats.aio.msg import Msg

from adapters.bootstrap import ROLES, started
from adapters.config import load_settings
from adapters.nats.server import NatsServer, free_port
from tests.reliability.faults import Report
from tests.services.test_limits import flood_of_unknown_fields

HOSTILE, HONEST = "H666", "H001"


def command(
    source: str, type_: str, data: dict[str, Any], command_id: str, time_: str | None = None
) -> bytes:
    envelope = {"specversion": "1.0", "id": command_id, "source": source, "type": type_, "data": data}
    if time_ is not None:
        envelope["time"] = time_
    return json.dumps(envelope).encode()


async def flood(js: Any, stop: asyncio.Event, sent: dict[str, int], rate: float | None) -> None:
    """The hostile hospital: truncated JSON, 1 MiB rejections, backdated late applications, reused ids."""
    subject = f"kadaster.cmd.hospital.{HOSTILE}"
    oversized = flood_of_unknown_fields().replace(b"hospital/H001", f"hospital/{HOSTILE}".encode())
    backdated = (datetime.now(UTC) - timedelta(days=30)).isoformat()
    i = 0
    while not stop.is_set():
        i += 1
        kind = ("malformed", "oversized", "backdated", "reused")[i % 4]
        if kind == "malformed":
            body, type_ = b'{"specversion": "1.0", "id": "x' + str(i).encode(), "midid.issue"
        elif kind == "oversized":
            body = oversized.replace(b'"id": "flood-1"', f'"id": "flood-{i}"'.encode())
            type_ = "midid.issue"
        elif kind == "backdated":
            data = {"round_id": "nmr-hostile", "campus": "x", "province": "Antwerpen", "region": "flemish"}
            data |= {"justified_activity_per_device": 1, "has_service_on_other_campus": False}
            body, type_ = (
                command(f"hospital/{HOSTILE}", "round.apply", data, f"late-{i}", backdated),
                "round.apply",
            )
        else:
            # The honest hospital's ids, under the hostile one's own source: never the honest one's outcome.
            body = command(f"hospital/{HOSTILE}", "midid.issue", {"modality": "CT"}, f"honest-{i % 50}")
            type_ = "midid.issue"
        try:
            await js.publish(
                f"{subject}.{type_}", body, headers={"Nats-Msg-Id": f"hospital/{HOSTILE}:{kind}-{i}"}
            )
            sent[kind] = sent.get(kind, 0) + 1
        except Exception:
            await asyncio.sleep(0.05)
        await asyncio.sleep(1 / rate if rate else 0)


async def hostile_party(
    commands: int = 500, rate: float = 50.0, hostile_rate: float | None = None
) -> tuple[Report, dict[str, Any]]:
    """The honest hospital's outcome delays (p50, p99, worst) while the hostile one floods, as fast as
    it can (`hostile_rate` None) or at that many messages a second."""
    report = Report("one hostile party", "sqlite")
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kadaster-hostile-") as directory:
        root = Path(directory)
        server = NatsServer(store_dir=root / "nats", port=free_port(), sync_always=False)
        server.start()
        try:
            settings = load_settings(
                environ={},
                nats_url=server.url,
                database_url=f"sqlite:///{root / 'kadaster.db'}",
                data_dir=str(root / "data"),
                http_port=0,
                log_level="error",
            )
            stop_service = asyncio.Event()
            async with started(settings, ROLES, stop_service) as running:
                nc = await nats.connect(running.nats_url)
                js = nc.jetstream()
                sent_at: dict[str, float] = {}
                delays: dict[str, float] = {}
                outcomes: dict[str, dict[str, Any]] = {}

                async def on_outcome(msg: Msg) -> None:
                    outcome = json.loads(msg.data).get("data", {})
                    command_id = outcome.get("command_id")
                    if command_id in sent_at and command_id not in delays:
                        delays[command_id] = time.monotonic() - sent_at[command_id]
                        outcomes[command_id] = outcome

                await nc.subscribe(f"kadaster.outcome.hospital.{HONEST}", cb=on_outcome)
                stop_flood = asyncio.Event()
                flooded: dict[str, int] = {}
                flooding = asyncio.create_task(flood(js, stop_flood, flooded, hostile_rate))
                for i in range(commands):
                    command_id = f"honest-{i}"
                    body = command(f"hospital/{HONEST}", "midid.issue", {"modality": "CT"}, command_id)
                    sent_at[command_id] = time.monotonic()
                    await js.publish(
                        f"kadaster.cmd.hospital.{HONEST}.midid.issue",
                        body,
                        headers={"Nats-Msg-Id": f"hospital/{HONEST}:{command_id}"},
                    )
                    await asyncio.sleep(max(0.0, began + (i + 1) / rate - time.monotonic()))
                deadline = time.monotonic() + 120
                while len(delays) < commands and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                stop_flood.set()
                await flooding
                await nc.close()
        finally:
            server.stop()
    accepted = [o for o in outcomes.values() if o.get("status") == "accepted"]
    mid_ids = [o["result"]["mid_id"] for o in accepted]
    report.commands = commands + sum(flooded.values())
    report.malformed = sum(flooded.values())
    report.lost = commands - len(accepted)
    report.mid_id_duplicates = len(mid_ids) - len(set(mid_ids))
    report.seconds = round(time.monotonic() - began, 1)
    ordered = sorted(delays.values())
    figures = {
        "honest commands": commands,
        "honest outcomes": len(delays),
        "hostile messages": flooded,
        "hostile rate": hostile_rate or "unbounded",
        "p50 s": round(statistics.median(ordered), 3) if ordered else None,
        "p99 s": round(ordered[int(len(ordered) * 0.99) - 1], 3) if ordered else None,
        "worst s": round(ordered[-1], 3) if ordered else None,
    }
    report.notes.append(json.dumps(figures))
    return report, figures


if __name__ == "__main__":
    import sys

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    hostile_rate = float(sys.argv[2]) if len(sys.argv) > 2 else None
    print(json.dumps(asyncio.run(hostile_party(count, hostile_rate=hostile_rate))[1], indent=2))
