"""The ledger's unsealed window: how long a recorded event waits for a published checkpoint over it."""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from adapters.bootstrap import ROLES, started
from adapters.config import load_settings
from adapters.ledger.publisher import CHECKPOINT_SUBJECT, read_checkpoint
from adapters.nats.client import KadasterClient
from adapters.nats.server import NatsServer, free_port


async def measure(rate: float, seconds: float, interval: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="kadaster-ledger-window-") as directory:
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
                log_level="warning",
                ledger_interval_seconds=interval,
            )
            stop = asyncio.Event()
            async with started(settings, ROLES, stop) as running:
                sealed: list[tuple[float, int]] = []

                async def on_checkpoint(msg: object) -> None:
                    sealed.append((time.monotonic(), read_checkpoint(msg.data).tree_size))  # type: ignore[attr-defined]

                await running.nc.subscribe(CHECKPOINT_SUBJECT, cb=on_checkpoint)
                samples: list[tuple[float, int]] = []
                client = await KadasterClient.connect(running.nats_url, "hospital/H001")
                began = time.monotonic()
                sent = 0
                while time.monotonic() - began < seconds:
                    await client.issue_mid_id("CT")
                    sent += 1
                    # The log's head as soon as this command is recorded (its reply has come back).
                    samples.append((time.monotonic(), running.register.position()))
                    wait = began + sent / rate - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                await asyncio.sleep(interval * 3 + 1)
                await client.close()
        finally:
            server.stop()
    windows = []
    for moment, head in samples:
        covered = next((at for at, size in sealed if size >= head and at >= moment), None)
        if covered is None:
            covered = next(at for at, size in sealed if size >= head)
        windows.append(max(0.0, covered - moment))
    windows.sort()
    return {
        "commands": float(len(samples)),
        "checkpoints": float(len(sealed)),
        "interval_s": interval,
        "median_s": windows[len(windows) // 2],
        "p99_s": windows[int(len(windows) * 0.99)],
        "worst_s": windows[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=100.0, help="commands per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--interval", type=float, default=1.0, help="KADASTER_LEDGER_INTERVAL_SECONDS")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.rate, args.seconds, args.interval)), indent=2))


if __name__ == "__main__":
    main()
