"""Progress of a long step as a few readable lines ("40/108 series forecast"), not one per item.

The assets pass `context.log.info` as `emit`, so the lines reach the Dagster UI's run log and the CLI's progress
output (dagster_project.defs.refresh.progress_line) alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable

# A line for each tenth of the work (but not within a second of the last line), else one after this many seconds of
# slower progress: about ten lines for a step of any length, a few more when it is slow.
MIN_SECONDS = 10.0
MIN_SECONDS_FOR_A_TENTH = 1.0


class Progress:
    """Counts finished items out of `total` and emits "<done>/<total> <what>" when it is worth a line: the last item,
    a tenth of the work since the last line (MIN_SECONDS_FOR_A_TENTH after it), or any progress MIN_SECONDS after it."""

    def __init__(self, emit: Callable[[str], None], what: str, total: int = 0,
                 clock: Callable[[], float] = time.monotonic):
        self.emit, self.what, self.total, self.clock = emit, what, total, clock
        self.done = 0
        self._shown, self._shown_at = 0, clock()

    def advance(self, count: int = 1, total: int | None = None) -> None:
        """`count` more items finished; `total` is the total when it was not known from the start."""
        if total and not self.total:
            self.total = total
        self.done += count
        now = self.clock()
        since = now - self._shown_at
        step = self.done - self._shown
        finished = self.total > 0 and self.done >= self.total
        tenth = self.total > 0 and step * 10 >= self.total and since >= MIN_SECONDS_FOR_A_TENTH
        if step > 0 and (finished or since >= MIN_SECONDS or tenth):
            self.emit(f"{self.done}/{self.total or '?'} {self.what}")
            self._shown, self._shown_at = self.done, now

    def finish(self) -> None:
        """The last count, if it has not been shown (fewer items finished than the total said)."""
        if self.done != self._shown:
            self.emit(f"{self.done}/{self.total or '?'} {self.what}")
            self._shown, self._shown_at = self.done, self.clock()


def silent(message: str) -> None:
    """The default `progress` of the pure functions: no lines."""
