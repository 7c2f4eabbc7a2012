"""Worker processes the evaluation service keeps for bulk work (re-evaluation jobs, policy simulations)."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor


class KeptPool:
    """Processes started by a clean forkserver (not forked from the service with its connections and threads)
    on first use and kept for later work; ``get(n)`` with another ``n`` replaces them (the old ones finish what
    they have, then stop). Thread-safe."""

    def __init__(self, initializer: Callable[[], None]) -> None:
        self._initializer = initializer
        self._pool: ProcessPoolExecutor | None = None
        self._size = 0
        self._lock = threading.Lock()

    def get(self, n: int) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None or n != self._size:
                if self._pool is not None:
                    self._pool.shutdown(wait=False)
                self._pool = ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("forkserver"),
                                                 initializer=self._initializer)
                self._size = n
            return self._pool

    @property
    def current(self) -> ProcessPoolExecutor | None:
        return self._pool

    def drop(self, pool: Executor) -> None:
        """Stop ``pool`` (broken, or its work cancelled); the next ``get`` starts new processes."""
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    def shutdown(self) -> None:
        """Stop the processes (they are also stopped at interpreter exit)."""
        pool = self._pool
        if pool is not None:
            self.drop(pool)
