"""The ledger loop of the relay role: hash new events, record signed checkpoints, publish them."""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor

import structlog
from nats.js import JetStreamContext

from adapters.config import Settings
from adapters.ledger.keys import LedgerKeyError, load_or_create_signer
from adapters.ledger.publisher import last_published_tree_size, publish_new_checkpoints
from adapters.ledger.store import SqlCheckpointStore
from services.ledger import Ledger
from services.register import Register

log = structlog.get_logger("kadaster.ledger")


def open_ledger(register: Register, settings: Settings, signing: bool = True) -> Ledger:
    """The register's ledger; with `signing`, its key is loaded (or created in the data dir)."""
    signer = load_or_create_signer(settings.ledger_key, settings.data_dir) if signing else None
    return Ledger(
        register.recorder,
        SqlCheckpointStore(register.recorder),
        signer,
        every=settings.ledger_checkpoint_every,
    )


async def run_ledger(
    register: Register,
    settings: Settings,
    stop: asyncio.Event,
    js: JetStreamContext | None = None,
    interval: float | None = None,
) -> None:
    """Advances the ledger every few seconds until `stop`; with `js`, publishes each new checkpoint.

    Hashing and SQL run on a thread of their own so the event loop never waits on them. A key that
    cannot be loaded or created is a configuration error: it is logged and stops the process.
    """
    loop = asyncio.get_running_loop()
    if interval is None:
        interval = settings.ledger_interval_seconds
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kadaster-ledger")
    try:
        try:
            ledger = await loop.run_in_executor(executor, open_ledger, register, settings)
        except LedgerKeyError as error:
            log.error("ledger_key_unavailable", error=str(error))
            stop.set()
            return
        assert isinstance(ledger.store, SqlCheckpointStore)
        published = await last_published_tree_size(js) if js is not None else 0
        log.info(
            "ledger_started", key_id=ledger.signer.key_id if ledger.signer else None, published=published
        )
        while not stop.is_set():
            try:
                # A first pass over a large register stops between batches, keeping what it hashed.
                recorded = await loop.run_in_executor(executor, ledger.advance, stop.is_set)
                if recorded:
                    log.debug(
                        "ledger_advanced", tree_size=recorded[-1].tree_size, root=recorded[-1].root_hash
                    )
                if js is not None:
                    published = await publish_new_checkpoints(js, ledger.store, published)
            except Exception:
                log.exception("ledger_failed")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
    finally:
        # Never wait here on the event loop: a cancelled pass finishes its batch on its own thread.
        executor.shutdown(wait=False)
    log.info("ledger_stopped")
