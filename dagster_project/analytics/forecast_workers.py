"""A worker process that fits forecast series beside the refresh's own threads, on the machine's second core.

AutoETS's optimiser (statsforecast's compiled `ets.optimize`) holds Python's lock, so threads fit one series at a time
whatever the cores; a process fits its own. The worker is spawned, not forked: a forked child inherits the locks of
the parent's thread pools (Polars', which cmdstanpy uses, hung a forked worker's first Prophet fit). A spawned one
imports pandas and statsforecast again, seconds of CPU, so it is started before it is needed (the refresh starts it
while dbt builds, when the run's process mostly waits, if the forecast will fit every series) and kept for the life
of the process: a later refresh in the same process reuses it. It writes nothing and reads nothing but what it is
sent. It ends at the interpreter's exit (concurrent.futures joins it) and, should its parent be killed, as soon as it
sees the parent gone (a thread waits on the parent's sentinel: the pipe it reads would stay open, since the worker
holds its other end itself). Ctrl-C is its parent's to handle. A worker that has not returned a series after
SERIES_TIMEOUT seconds is killed, and the series are fitted in the parent.

Only AutoETS and seasonal-naive series are sent: a fitted Prophet model is not meant to be pickled (Prophet saves
through its own JSON), and Prophet's fits already run in a Stan process of their own.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import queue
import signal
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool

# Series sent before the last came back: the worker starts the next while the thread sending them waits for Python's
# lock to take the last.
IN_FLIGHT = 2
# Far beyond any one series' fit (a Prophet-free series takes well under a second): a worker this late is stuck.
SERIES_TIMEOUT = 300.0
_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_warm: Future | None = None


def start() -> None:
    """Spawn the worker (once per process) and have it import the forecasting libraries; returns at once."""
    global _pool, _warm
    with _lock:
        if _pool is None:
            _pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=_import)
            _warm = _pool.submit(_ready)


def running() -> tuple[ProcessPoolExecutor, Future] | None:
    """The worker and the future that is done once it has imported the libraries, started if need be."""
    start()
    with _lock:
        return (_pool, _warm) if _pool is not None and _warm is not None else None


def discard(pool: ProcessPoolExecutor, warm: Future | None = None) -> None:
    """Forget a worker that broke (killed, out of memory) or is stuck: the next `start` spawns another. `warm`: a
    stuck worker's warm-up future, whose result is its process id, to kill it by."""
    global _pool, _warm
    with _lock:
        if _pool is pool:
            _pool, _warm = None, None
    if warm is not None and warm.done() and warm.exception() is None:
        try:
            os.kill(warm.result(), signal.SIGKILL)
        except OSError:
            pass  # gone already
    pool.shutdown(wait=False, cancel_futures=True)


def fit_all(keys: list, fit: Callable[[Hashable], object], sendable: Callable[[Hashable], tuple | None],
            threads: int, use_worker: bool, found: defaultdict[str, list[str]]
            ) -> Iterator[tuple[Hashable, object, bool]]:
    """(key, outcome, whether the worker fitted it) for every key, as each finishes, in no set order.

    `threads` threads call `fit(key)`, taking the keys from the front (the caller puts Prophet's, the longest and not
    sendable, first). With `use_worker`, one more thread sends keys to the worker from the back, once the worker is
    ready: the keys `sendable(key)` gives `forecast_one`'s arguments for (None: this process only). The worker's
    warnings go into `found`. A worker that breaks is discarded and its series fitted here; any other error is
    raised."""
    work = _Keys(keys, sendable)
    worker = running() if use_worker and any(work.sendable.values()) else None
    done: queue.SimpleQueue = queue.SimpleQueue()

    def fit_here() -> None:
        while (key := work.take(front=True)) is not None:
            done.put((key, fit(key), False))

    def send() -> None:
        pool, warm = worker
        while not warm.done():  # the threads here go on meanwhile
            if work.left() == 0:
                return
            time.sleep(0.1)
        in_flight: deque = deque()
        while True:
            while len(in_flight) < IN_FLIGHT and (key := work.take(front=False)) is not None:
                try:
                    in_flight.append((key, pool.submit(forecast_one_collecting, work.sendable[key])))
                except BrokenProcessPool:
                    in_flight.append((key, None))
            if not in_flight:
                return
            key, future = in_flight.popleft()
            try:
                if future is None:
                    raise BrokenProcessPool
                outcome, messages = future.result(timeout=SERIES_TIMEOUT)
            except (BrokenProcessPool, TimeoutError) as failure:
                # (A broken worker is dead already: its process id may be another process's by now.)
                discard(pool, warm if isinstance(failure, TimeoutError) else None)
                for key in [key, *(key for key, _ in in_flight)]:
                    done.put((key, fit(key), False))
                fit_here()
                return
            for series, lines in messages.items():
                found[series].extend(lines)
            done.put((key, outcome, True))

    with ThreadPoolExecutor(max_workers=max(threads, 1) + (worker is not None)) as in_threads:
        consumers = [in_threads.submit(fit_here) for _ in range(max(threads, 1))]
        consumers += [in_threads.submit(send)] if worker is not None else []
        try:
            for _ in keys:
                while True:
                    try:
                        yield done.get(timeout=0.2)
                        break
                    except queue.Empty:
                        failed = next((c for c in consumers if c.done() and c.exception() is not None), None)
                        if failed is not None:
                            raise failed.exception()
        finally:
            work.stop()  # on an error: the other threads take no further series


class _Keys:
    """The keys left, shared by the threads: the front for this process, the back (sendable ones) for the worker."""

    def __init__(self, keys: list, sendable: Callable[[Hashable], tuple | None]):
        self.sendable = {key: sendable(key) for key in keys}
        self._left = deque(keys)
        self._lock = threading.Lock()

    def take(self, front: bool) -> Hashable | None:
        with self._lock:
            if not self._left:
                return None
            if front:
                return self._left.popleft()
            return self._left.pop() if self.sendable[self._left[-1]] is not None else None

    def left(self) -> int:
        with self._lock:
            return len(self._left)

    def stop(self) -> None:
        with self._lock:
            self._left.clear()


def _import() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_end_with_parent, args=(multiprocessing.parent_process().sentinel,), daemon=True).start()
    import dagster_project.analytics.forecast_contenders  # noqa: F401 - statsforecast, pandas, Prophet's modules


def _end_with_parent(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(0)


def _ready() -> int:
    return os.getpid()


def forecast_one_collecting(args: tuple) -> tuple:
    """`forecast_one(*args)` in the worker, and the libraries' warnings it raised (series -> messages), which the
    parent merges into its own collection (forecast_warnings)."""
    from dagster_project.analytics.forecast_contenders import forecast_one
    from dagster_project.analytics.forecast_warnings import library_warnings

    with library_warnings() as found:
        outcome = forecast_one(*args)
    return outcome, dict(found)
