"""Worker processes the evaluation service starts for bulk work (re-evaluation jobs, policy simulations).

Started by a clean forkserver (not forked from the service with its connections and threads) on first need,
stopped again after ``ZJTX_EVAL_WORKERS_IDLE_SECONDS`` without work, so an idle service holds no ~80 MiB
worker, forkserver or resource tracker. They never outlive the service, even a SIGKILLed one: each worker
watches the service (the pipe multiprocessing keeps to its parent) and the forkserver (``PR_SET_PDEATHSIG``),
and gives back the forkserver's "alive" pipe it inherits, so the forkserver sees the service end and exits;
the resource tracker exits once no process holds its pipe."""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Any

from shared.infra import die_with_parent


def _configured_idle_seconds() -> float:
    from services.evaluation.config import get_config

    return get_config().workers_idle_seconds


def _watch_service() -> None:
    """In a worker: exit at once when the service that asked for this process is gone."""
    from multiprocessing import connection, forkserver, parent_process

    # The forkserver hands every child the write end of its "alive" pipe; while a worker holds it, the
    # forkserver never sees the service end (and so never exits). Workers start no processes of their own.
    server: Any = forkserver._forkserver
    fd = getattr(server, "_forkserver_alive_fd", None)
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)
        server._forkserver_alive_fd = None
    parent = parent_process()
    sentinel = getattr(parent, "sentinel", None) if parent is not None else None
    if sentinel is None:
        return

    def watch() -> None:
        connection.wait([sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="watch-service", daemon=True).start()


def _start_worker(initializer: Callable[[], None]) -> None:
    die_with_parent()  # the forkserver (our parent) ending ends us
    _watch_service()
    initializer()


class _CountingPool(ProcessPoolExecutor):
    """Counts the work in flight and remembers when the last piece ended (for the idle reaper)."""

    def __init__(self, n: int, initializer: Callable[[], None]) -> None:
        super().__init__(n, mp_context=multiprocessing.get_context("forkserver"),
                         initializer=_start_worker, initargs=(initializer,))
        self.busy = 0
        self.last_active = time.monotonic()
        self._count_lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self._count_lock:
            self.busy += 1
            self.last_active = time.monotonic()
        try:
            future = super().submit(fn, *args, **kwargs)
        except BaseException:
            self._done(None)
            raise
        future.add_done_callback(self._done)
        return future

    def _done(self, _: object) -> None:
        with self._count_lock:
            self.busy -= 1
            self.last_active = time.monotonic()

    def idle_for(self) -> float:
        with self._count_lock:
            return 0.0 if self.busy else time.monotonic() - self.last_active


_KEPT: list[KeptPool] = []
_SERVERS = threading.Lock()  # held while a pool is created or the forkserver and resource tracker stopped


def _stop_servers_if_unused() -> None:
    """No pool has processes: stop the forkserver and the resource tracker too (the next pool starts them)."""
    from multiprocessing import forkserver, resource_tracker

    gc.collect()  # the ended pools' queues unregister their semaphores now, not later through a new tracker
    with _SERVERS:
        if any(k._pool is not None for k in _KEPT):
            return
        forkserver._forkserver._stop()  # type: ignore[attr-defined]
        resource_tracker._resource_tracker._stop()  # type: ignore[attr-defined]


class KeptPool:
    """Worker processes started on first use and kept while there is work; ``get(n)`` with another ``n``
    replaces them (the old ones finish what they have, then stop). After ``idle_seconds`` without work (read
    from ``idle_seconds()`` at each use) the processes are stopped; the next ``get`` starts new ones.
    Thread-safe."""

    def __init__(self, initializer: Callable[[], None],
                 idle_seconds: Callable[[], float] = _configured_idle_seconds) -> None:
        self._initializer = initializer
        self._idle_seconds = idle_seconds
        self._pool: _CountingPool | None = None
        self._size = 0
        self._lock = threading.Lock()
        self._reaper: threading.Timer | None = None
        _KEPT.append(self)

    def get(self, n: int) -> ProcessPoolExecutor:
        with _SERVERS, self._lock:
            if self._pool is None or n != self._size:
                if self._pool is not None:
                    self._pool.shutdown(wait=False)
                self._pool = _CountingPool(n, self._initializer)
                self._size = n
            self._pool.last_active = time.monotonic()
            self._schedule(self._idle_seconds())
            return self._pool

    def _schedule(self, delay: float) -> None:
        """(Re)arm the reaper; called with the lock held."""
        if self._reaper is not None:
            self._reaper.cancel()
        if delay <= 0:
            self._reaper = None
            return
        self._reaper = threading.Timer(delay, self._reap)
        self._reaper.daemon = True
        self._reaper.start()

    def _reap(self) -> None:
        with self._lock:
            pool = self._pool
            if pool is None:
                return
            limit = self._idle_seconds()
            idle = pool.idle_for()
            if idle < limit:  # work came meanwhile: look again when it could be idle long enough
                self._schedule(max(0.5, limit - idle))
                return
            self._pool = None
            self._reaper = None
        pool.shutdown(wait=True)  # this is the reaper's own thread
        del pool
        _stop_servers_if_unused()

    @property
    def current(self) -> ProcessPoolExecutor | None:
        return self._pool

    def drop(self, pool: Executor) -> None:
        """Stop ``pool`` (broken, or its work cancelled); the next ``get`` starts new processes."""
        with self._lock:
            if self._pool is pool:
                self._pool = None
                if self._reaper is not None:
                    self._reaper.cancel()
                    self._reaper = None
        pool.shutdown(wait=False, cancel_futures=True)

    def shutdown(self) -> None:
        """Stop the processes (they also stop when the service ends, however it ends)."""
        pool = self._pool
        if pool is not None:
            self.drop(pool)
