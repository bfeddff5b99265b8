"""The ledger loop of the relay role: hash new events, record signed checkpoints, publish them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

import structlog
from eventsourcing.application import AggregateNotFoundError
from nats.js import JetStreamContext

from adapters.config import Settings
from adapters.ledger.keys import LedgerKeyError, load_ledger_signer
from adapters.ledger.publisher import last_published_tree_size, publish_new_checkpoints
from adapters.ledger.store import SqlCheckpointStore
from domain.ledger_key import LEDGER_KEYS_ID, LedgerKeys
from services.ledger import Ledger
from services.register import Register

log = structlog.get_logger("kadaster.ledger")

SEAL_WAIT_SECONDS = 20.0
"""How long a stopping ledger waits for this process's writers before it seals what is recorded."""


async def seal(
    ledger: Ledger, executor: ThreadPoolExecutor, js: JetStreamContext | None, published: int
) -> None:
    """Hashes, signs and publishes everything recorded so far: the ledger's last act before it stops."""
    assert isinstance(ledger.store, SqlCheckpointStore)
    began = time.perf_counter()
    try:
        recorded = await asyncio.get_running_loop().run_in_executor(executor, ledger.advance)
        if js is not None:
            published = await asyncio.wait_for(
                publish_new_checkpoints(js, ledger.store, published), timeout=SEAL_WAIT_SECONDS
            )
    except Exception:
        log.exception("ledger_seal_failed")
        return
    log.info(
        "ledger_sealed",
        tree_size=recorded[-1].tree_size if recorded else None,
        published=published if js is not None else None,
        seconds=round(time.perf_counter() - began, 3),
    )


def recorded_keys(register: Register) -> LedgerKeys | None:
    """The recorded rotations of the ledger's key, if any was ever recorded."""
    try:
        keys: object = register.repository.get(LEDGER_KEYS_ID)
    except AggregateNotFoundError:
        return None
    assert isinstance(keys, LedgerKeys)
    return keys


def open_ledger(register: Register, settings: Settings, signing: bool = True) -> Ledger:
    """The register's ledger; with `signing`, its key is loaded (created in the data dir only for a
    ledger that has no checkpoint yet)."""
    store = SqlCheckpointStore(register.recorder)
    signer = None
    if signing:
        last = store.last_block()
        keys = recorded_keys(register) if last is not None else None
        signer = load_ledger_signer(
            settings.ledger_key,
            settings.data_dir,
            last.checkpoint.key_id if last is not None else None,
            keys.current_key_id if keys is not None else None,
        )
    return Ledger(register.recorder, store, signer, every=settings.ledger_checkpoint_every)


async def run_ledger(
    register: Register,
    settings: Settings,
    stop: asyncio.Event,
    js: JetStreamContext | None = None,
    interval: float | None = None,
    writers_stopped: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Advances the ledger every `interval` seconds until `stop`; with `js`, publishes each new checkpoint.

    On a clean stop it seals: once `writers_stopped` (this process's writers) has returned, it hashes
    and signs whatever is recorded and publishes that checkpoint before it exits, so no recorded
    event is left for the next start to hash, tampered or not. Hashing and SQL run on a thread of
    their own so the event loop never waits on them. A key that cannot be loaded (or, for a ledger
    without checkpoints, created) is a configuration error: it is logged and stops the process.
    """
    loop = asyncio.get_running_loop()
    if interval is None:
        interval = settings.ledger_interval_seconds
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kadaster-ledger")
    try:
        try:
            ledger = await loop.run_in_executor(executor, open_ledger, register, settings)
        except LedgerKeyError as error:
            # Fails the process: signing with another key than the ledger's would break its line.
            log.error("ledger_key_unavailable", error=str(error))
            raise
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
        if writers_stopped is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writers_stopped(), timeout=SEAL_WAIT_SECONDS)
        await seal(ledger, executor, js, published)
    finally:
        # Never wait here on the event loop: a cancelled pass finishes its batch on its own thread.
        executor.shutdown(wait=False)
    log.info("ledger_stopped")
