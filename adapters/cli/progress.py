"""A one-line progress bar on stderr for long audits and exports, shown only on a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """Callable as `progress(done, total)`; silent when stderr is not a terminal (scripts, cron, CI)."""

    def __init__(self, label: str, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.started = time.monotonic()
        self._shown = 0.0
        self._drawn = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        # Redrawing more than ten times a second costs more than it tells.
        if done < total and now - self._shown < 0.1:
            return
        self._shown = now
        rate = done / max(now - self.started, 1e-6)
        if total > 0:
            share = min(done / total, 1.0)
            bar = "#" * int(share * 30)
            line = f"{self.label} [{bar:<30}] {share:6.1%} {done:,}/{total:,} ({rate:,.0f}/s)"
        else:
            line = f"{self.label} {done:,} ({rate:,.0f}/s)"
        self.stream.write("\r" + line)
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()


class PhasedProgress:
    """Callable as `progress(phase, done, total)`: one bar per phase of a long job, in turn."""

    def __init__(self, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.stream = stream
        self.enabled = enabled
        self._bar: ProgressBar | None = None

    def __call__(self, phase: str, done: int, total: int) -> None:
        if self._bar is None or self._bar.label != phase:
            self.close()
            self._bar = ProgressBar(phase, self.stream, self.enabled)
        self._bar(done, total)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
