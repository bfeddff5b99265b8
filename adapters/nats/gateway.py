"""One worker thread per process runs the synchronous pipeline; RPC requests are micro-batched."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from services.processor import CommandProcessor, Handled, Inbound

T = TypeVar("T")


class CommandGateway:
    """Serialises every write of this process through one thread, so they never race each other.

    Writes from other processes are still safe: the event store refuses conflicting versions and
    the processor retries the batch.
    """

    def __init__(self, processor: CommandProcessor, max_batch: int = 256) -> None:
        self.processor = processor
        self.max_batch = max_batch
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kadaster-writer")
        self._queue: asyncio.Queue[tuple[Inbound, asyncio.Future[Handled]]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None

    async def call(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def process(self, batch: Sequence[Inbound]) -> list[Handled]:
        return await self.call(self.processor.process, list(batch))

    async def submit(self, inbound: Inbound) -> Handled:
        """One command, batched with whatever else is waiting (RPC)."""
        if self._worker is None:
            self._worker = asyncio.create_task(self._drain())
        future: asyncio.Future[Handled] = asyncio.get_running_loop().create_future()
        await self._queue.put((inbound, future))
        return await future

    async def _drain(self) -> None:
        while True:
            waiting = [await self._queue.get()]
            while len(waiting) < self.max_batch and not self._queue.empty():
                waiting.append(self._queue.get_nowait())
            try:
                handled = await self.process([inbound for inbound, _ in waiting])
            except Exception as error:
                for _, future in waiting:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), result in zip(waiting, handled, strict=True):
                if not future.done():
                    future.set_result(result)

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self._executor.shutdown(wait=True)
