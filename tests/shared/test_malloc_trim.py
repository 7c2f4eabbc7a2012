"""The heap is trimmed once per burst, when the process is quiet again (shared/memory.py)."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from shared import memory


def test_malloc_trim_is_available_on_linux() -> None:
    assert memory.malloc_trim() is True


async def test_trimmed_once_after_a_burst_when_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[float] = []
    monkeypatch.setattr(memory, "_load_trim", lambda: lambda pad: calls.append(time.monotonic()) or 1)
    monkeypatch.setattr(memory, "BUSY_CPU", 0.05)
    stopping = asyncio.Event()
    task = asyncio.create_task(memory.trim_when_quiet(stopping, interval=0.3))
    await asyncio.sleep(0.7)  # start-up counts as a burst: trimmed once quiet
    assert len(calls) == 1
    await asyncio.sleep(0.7)  # quiet, no new burst: not again
    assert len(calls) == 1
    end = time.process_time() + 0.4  # a burst (CPU in this process), then quiet again
    while time.process_time() < end:
        pass
    await asyncio.sleep(0.9)
    assert len(calls) == 2
    stopping.set()
    await asyncio.wait_for(task, 2)


async def test_trimmed_while_never_quiet_at_most_every_trim_every(monkeypatch: pytest.MonkeyPatch) -> None:
    """Busy stretches without a quiet interval between them (idle polling above the quiet threshold on a loaded
    machine) still get the heap trimmed, every ``TRIM_EVERY`` seconds."""
    calls: list[float] = []
    monkeypatch.setattr(memory, "_load_trim", lambda: lambda pad: calls.append(time.monotonic()) or 1)
    monkeypatch.setattr(memory, "BUSY_CPU", 0.05)
    monkeypatch.setattr(memory, "QUIET_CPU", 0.0)  # never quiet
    monkeypatch.setattr(memory, "TRIM_EVERY", 0.8)
    stopping = asyncio.Event()
    task = asyncio.create_task(memory.trim_when_quiet(stopping, interval=0.2))
    started = time.monotonic()
    while time.monotonic() - started < 2.0:  # busy in every interval
        end = time.process_time() + 0.15
        while time.process_time() < end:
            pass
        await asyncio.sleep(0.05)
    stopping.set()
    await asyncio.wait_for(task, 2)
    assert 1 <= len(calls) <= 3
    assert all(b - a >= 0.75 for a, b in itertools.pairwise(calls))
