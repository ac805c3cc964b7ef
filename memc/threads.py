"""Producer and consumer threads behind bounded queues, for decoding and encoding beside the loop.

A worker's exception is re-raised in the calling thread; stopping either side never deadlocks
(every put and get polls a stop flag), so Ctrl-C and SIGTERM end a conversion promptly.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

QUEUE_FRAMES = 8


_DONE = object()


class _Failure:
    def __init__(self, where: str, error: BaseException) -> None:
        self.where, self.error = where, error


def _put(q: queue.Queue, item: object, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _get(q: queue.Queue, alive: Callable[[], bool]) -> object:
    while True:
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            if not alive():
                return _DONE


def background(items: Iterable, name: str, maxsize: int = QUEUE_FRAMES) -> Iterator:
    """Iterate ``items`` in a thread, through a bounded queue; its errors surface here."""
    q: queue.Queue = queue.Queue(maxsize)
    stop = threading.Event()

    def work() -> None:
        try:
            for item in items:
                if not _put(q, item, stop):
                    return
            _put(q, _DONE, stop)
        except BaseException as exc:  # forwarded to the consumer, raised there
            _put(q, _Failure(name, exc), stop)

    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = _get(q, thread.is_alive)
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join()


class BackgroundWriter:
    """Calls ``write(item)`` in a thread for each ``put``; ``close`` drains, joins and re-raises."""

    def __init__(self, write: Callable[[object], None], name: str, maxsize: int = QUEUE_FRAMES) -> None:
        self._q: queue.Queue = queue.Queue(maxsize)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._write = write
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        try:
            while True:
                item = _get(self._q, lambda: not self._stop.is_set())
                if item is _DONE:
                    return
                self._write(item)
        except BaseException as exc:
            self._error = exc
            self._stop.set()

    def put(self, item: object) -> None:
        if self._error is None and not _put(self._q, item, self._stop) and self._error is None:
            raise RuntimeError("writer stopped")
        self._raise()

    def close(self, drain: bool = True) -> None:
        if drain and self._error is None:
            _put(self._q, _DONE, self._stop)
        else:
            self._stop.set()
        self._thread.join()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error


class Ahead:
    """Runs calls in one worker thread, in the order given, while the caller goes on: the caller
    gets a ``Future`` at once. At most ``limit`` calls are unfinished at a time (``submit`` waits
    for the oldest), so the caller never runs far ahead and what the calls hold stays bounded.
    A call's exception is raised by its ``Future`` and by the next ``submit``."""

    def __init__(self, name: str, limit: int) -> None:
        self._pool = ThreadPoolExecutor(1, name)
        self._pending: deque[Future] = deque()
        self._limit = limit

    def submit(self, call: Callable, *args: object) -> Future:
        while self._pending and (self._pending[0].done() or len(self._pending) >= self._limit):
            self._pending.popleft().result()
        future = self._pool.submit(call, *args)
        self._pending.append(future)
        return future

    def close(self, cancel: bool = False) -> None:
        """Wait for the calls given (or, with ``cancel``, only for the one running) and end the thread."""
        self._pool.shutdown(wait=True, cancel_futures=cancel)
