"""What the forecasting libraries warn about while the series are fitted, collected per series instead of reaching
stderr, where it names neither the asset nor the series.

The series are fitted in threads, so the warnings are collected once around all of them and each thread says which
series it is working on (``working_on``)."""

from __future__ import annotations

import logging
import threading
import warnings
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

LIBRARY_LOGGERS = ("prophet", "cmdstanpy", "statsforecast")
UNKNOWN = "(no series)"
_current = threading.local()


@contextmanager
def working_on(series: str) -> Iterator[None]:
    """Warnings raised in this thread inside the block are attributed to ``series``."""
    before = getattr(_current, "series", UNKNOWN)
    _current.series = series
    try:
        yield
    finally:
        _current.series = before


def _record(found: dict[str, list[str]], message: str) -> None:
    found[getattr(_current, "series", UNKNOWN)].append(" ".join(message.split()))


class _Collect(logging.Handler):
    def __init__(self, found: dict[str, list[str]]):
        super().__init__(logging.WARNING)
        self.found = found

    def emit(self, record: logging.LogRecord) -> None:
        _record(self.found, record.getMessage())


@contextmanager
def library_warnings() -> Iterator[dict[str, list[str]]]:
    """Collect the libraries' logger warnings and Python warnings raised in any thread inside the block: series ->
    its messages. Every occurrence counts (not just the first per code location), so each series is named.

    Deprecation warnings are left to the caller's warning filters and shown as usual."""
    found: dict[str, list[str]] = defaultdict(list)
    handler = _Collect(found)
    loggers = [logging.getLogger(name) for name in LIBRARY_LOGGERS]
    propagate = [logger.propagate for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.propagate = False
    try:
        with warnings.catch_warnings():
            shown = warnings.showwarning

            def show(message, category, filename, lineno, file=None, line=None):
                if issubclass(category, DeprecationWarning):
                    shown(message, category, filename, lineno, file, line)
                else:
                    _record(found, str(message))

            for category in (UserWarning, RuntimeWarning, FutureWarning):
                warnings.filterwarnings("always", category=category)
            warnings.showwarning = show
            yield found
    finally:
        for logger, before in zip(loggers, propagate):
            logger.removeHandler(handler)
            logger.propagate = before


def warning_lines(found: dict[str, list[str]], shown: int = 5) -> list[str]:
    """One line per distinct message, naming the series it came from (the first few, then how many more), in the
    series' order, not the order in which threads and the worker finished them."""
    series: dict[str, list[str]] = {}
    for name, messages in sorted(found.items()):
        for message in dict.fromkeys(messages):
            series.setdefault(message, []).append(name)
    return [f"{message} (series {', '.join(names[:shown])}" + (f" and {len(names) - shown} more)"
                                                               if len(names) > shown else ")")
            for message, names in series.items()]
