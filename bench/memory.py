"""Memory of the whole embedded dev stack after the demo load and when idle (issue 17 item 3).

    .venv/bin/python bench/memory.py [--demo-size 2000] [--idle 45]

Starts ``zjtx run`` on a temporary ZJTX_HOME with random ports (never the defaults), waits for the demo load,
reads ``/proc/<pid>/smaps_rollup`` of every process: per service the RSS of its process tree (the service and
its children: evaluation's forkserver, resource tracker and workers), PostgreSQL's PSS (postmaster and
backends: RSS counts their shared buffers once per backend; split into the shared memory and the backends' own),
and the whole stack's PSS (the ``zjtx run`` parent, its children, Tansu, the stand-ins and PostgreSQL). Read
once right after the demo load and again after ``--idle`` seconds (evaluation's idle worker processes end after
ZJTX_EVAL_WORKERS_IDLE_SECONDS, 30).
Targets: ≤ 150 MiB per service including its children, ≤ 1.0 GiB for the stack. Never fails on size.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _stack import Stack, cmdline, cpu_seconds, descendants, memory_kib, start_stack

SERVICE_TARGET_MIB = 150
STACK_TARGET_MIB = 1024


def _mib(kib: int) -> float:
    return kib / 1024


def _pss_parts(pids: list[int]) -> tuple[int, int]:
    """(Pss_Shmem, Pss_Anon) in KiB summed over ``pids``: PostgreSQL's shared buffers vs its backends' own memory."""
    shmem = anon = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("Pss_Shmem:"):
                shmem += int(line.split()[1])
            elif line.startswith("Pss_Anon:"):
                anon += int(line.split()[1])
    return shmem, anon


def snapshot(stack: Stack, label: str) -> None:
    services = stack.service_pids()
    pg = stack.postgres_pids()
    everything = {stack.proc.pid, *descendants(stack.proc.pid), *pg}
    print(f"\n-- {label} --")
    print(f"{'process tree':<28}{'RSS MiB':>9}{'PSS MiB':>9}  processes")
    counted: set[int] = set()
    for name, pid in sorted(services.items()):
        tree = [pid, *descendants(pid)]
        counted.update(tree)
        rss = sum(memory_kib(p)[0] for p in tree)
        pss = sum(memory_kib(p)[1] for p in tree)
        kids = ", ".join(f"{cmdline(p).split(' -c ')[-1][:38]} {_mib(memory_kib(p)[0]):.0f}" for p in tree[1:])
        flag = "ok" if _mib(rss) <= SERVICE_TARGET_MIB else "over"
        print(f"{name:<28}{_mib(rss):>9.1f}{_mib(pss):>9.1f}  {len(tree)} [{flag}]" + (f" ({kids})" if kids else ""))
    pg_rss = sum(memory_kib(p)[0] for p in pg)
    pg_pss = sum(memory_kib(p)[1] for p in pg)
    counted.update(pg)
    shmem, anon = _pss_parts(pg)
    print(f"{'postgresql':<28}{_mib(pg_rss):>9.1f}{_mib(pg_pss):>9.1f}  {len(pg)} "
          f"(shared memory {_mib(shmem):.0f}, backends' own {_mib(anon):.0f})")
    parent_rss, parent_pss = memory_kib(stack.proc.pid)
    counted.add(stack.proc.pid)
    print(f"{'zjtx run (supervisor)':<28}{_mib(parent_rss):>9.1f}{_mib(parent_pss):>9.1f}  1")
    rest = [p for p in everything if p not in counted]
    rest_rss = sum(memory_kib(p)[0] for p in rest)
    rest_pss = sum(memory_kib(p)[1] for p in rest)
    names = ", ".join(sorted({cmdline(p).split()[0].rsplit("/", 1)[-1] + " " + " ".join(cmdline(p).split()[1:3])
                              for p in rest}))[:90]
    print(f"{'broker + stand-ins':<28}{_mib(rest_rss):>9.1f}{_mib(rest_pss):>9.1f}  {len(rest)} ({names})")
    total = sum(memory_kib(p)[1] for p in everything)
    flag = "ok" if _mib(total) <= STACK_TARGET_MIB else "over"
    print(f"{'whole stack (PSS)':<28}{'':>9}{_mib(total):>9.1f}  {len(everything)} [{flag}]")
    print(f"targets: each service ≤ {SERVICE_TARGET_MIB} MiB RSS with its children; stack ≤ {STACK_TARGET_MIB} MiB")


def settle(stack: Stack, limit: float = 120.0) -> float:
    """Wait until the demo load's events have run through (the services together below 15% of a core for 3 s;
    idle consumers and workers use a little)."""
    started = time.monotonic()
    quiet = 0
    last = sum(cpu_seconds(p) for p in stack.service_pids().values())
    while time.monotonic() - started < limit and quiet < 3:
        time.sleep(1.0)
        now = sum(cpu_seconds(p) for p in stack.service_pids().values())
        quiet = quiet + 1 if now - last < 0.15 else 0
        last = now
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo-size", type=int, default=2000)
    parser.add_argument("--idle", type=float, default=45.0, help="seconds idle before the second reading")
    args, _ = parser.parse_known_args()
    started = time.monotonic()
    stack = start_stack(args.demo_size)
    try:
        print(f"zjtx run up with --demo-size {args.demo_size} in {time.monotonic() - started:.0f} s "
              f"(ports from {stack.port_base}, home {stack.home})")
        waited = settle(stack)
        snapshot(stack, f"after the demo load and its events ({waited:.0f} s until the services were quiet)")
        pids = stack.service_pids()
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        time.sleep(args.idle)
        snapshot(stack, f"idle {args.idle:.0f} s later")
        print("CPU while idle (% of a core): " + ", ".join(
            f"{name} {100 * (cpu_seconds(pid) - before[name]) / args.idle:.1f}" for name, pid in sorted(pids.items())))
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
