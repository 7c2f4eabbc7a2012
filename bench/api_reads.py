"""API read speed: the registry's enterprise read vs a bare app doing the same necessary work (issue 17 item 1).

    .venv/bin/python bench/api_reads.py [--duration 10] [--rounds 2] [--demo-size 2000]

Starts the dev stack (``zjtx run``) on a temporary ZJTX_HOME and random ports, and a *bare* FastAPI + asyncpg app
(below, in this file) on the same PostgreSQL, run by the same uvicorn. The bare app does only what the read needs:
verify the same HS256 JWT (PyJWT), check the enterprise is in the token's region, and return the enterprise with its
valid titles, active pool memberships and region name from one statement (JSON built by PostgreSQL, bytes passed
through; no reset round trip after each read, as the services' hot-read pool). Load: ``GET
/api/v1/enterprises/{uscc}`` with a county token (330110), 16 keep-alive connections, ``wrk`` (``apt-get install -y
wrk``; without it a Python load generator, the same for both sides), rounds alternated registry/bare. Prints req/s,
p50 and p99 of every round and the ratio of the medians; target ≥ 0.70 (and the registry's p99 within 3× its p50).
Then the other services' hot reads of the 企业码 app (evaluations, recognitions, entitlements, notices) with the
enterprise's own token, no bare twin.
Never fails on slowness.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

TARGET = 0.70
CONNECTIONS = 16
HERE = Path(__file__).resolve()

# ----------------------------------------------------------------------------------------------- the bare app

BARE_SQL = """
SELECT json_build_object(
  'uscc', e.uscc, 'name', e.name, 'region_code', e.region_code, 'region_name', r.name,
  'industry_code', e.industry_code, 'is_manufacturing', e.is_manufacturing, 'founded_on', e.founded_on,
  'scale', e.scale, 'scale_source', e.scale_source, 'focus', coalesce(e.focus, '{}'::jsonb), 'liaison', e.liaison,
  'status', e.status, 'deregistered_reason', e.deregistered_reason, 'version', e.version,
  'created_at', e.created_at, 'updated_at', e.updated_at,
  'current_tiers', coalesce((SELECT json_agg(json_build_object('recognition_id', t.recognition_id, 'tier', t.tier,
        'level', t.level, 'valid_from', t.valid_from, 'valid_to', t.valid_to) ORDER BY t.valid_from)
      FROM registry.recognitions t
      WHERE t.uscc = e.uscc AND t.status = 'valid' AND (t.valid_to IS NULL OR t.valid_to >= current_date)),
    '[]'::json),
  'pools', coalesce((SELECT json_agg(json_build_object('pool_id', p.id, 'level', p.level,
        'pool_region', p.region_code, 'track', p.track, 'year', m.year, 'basis', m.basis,
        'entered_on', m.entered_on, 'exited_on', m.exited_on, 'exit_reason', m.exit_reason)
        ORDER BY m.entered_on, m.id)
      FROM registry.pool_memberships m JOIN registry.pools p ON p.id = m.pool_id
      WHERE m.uscc = e.uscc AND m.exited_on IS NULL), '[]'::json),
  'warnings', '[]'::json)::text
FROM registry.enterprises e LEFT JOIN registry.regions r ON r.code = e.region_code
WHERE e.uscc = $1 AND e.region_code = $2
"""


def bare_app(dsn: str, secret: str):  # type: ignore[no-untyped-def]
    """FastAPI + asyncpg: JWT verified, region checked in the statement, JSON text passed through."""
    import asyncpg
    import jwt
    from fastapi import FastAPI, Header, HTTPException
    from fastapi.responses import Response

    state: dict[str, asyncpg.Pool] = {}

    async def keep_state(_: Any) -> None:
        """Nothing to reset after a read: no RESET ALL round trip per request (as shared.db_reads' pool)."""

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> Any:  # the same pool size as a service's (Settings.db_pool_size)
        state["pool"] = await asyncpg.create_pool(dsn, min_size=10, max_size=10, reset=keep_state)
        yield
        await state["pool"].close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/api/v1/enterprises/{uscc}")
    async def get_one(uscc: str, authorization: str = Header()) -> Response:
        try:
            claims = jwt.decode(authorization.removeprefix("Bearer "), secret, algorithms=["HS256"],
                                options={"require": ["sub", "exp"]})
        except jwt.PyJWTError as exc:
            raise HTTPException(401) from exc
        if claims.get("role") != "county_official":  # the bench's token; a county sees its own county only
            raise HTTPException(403)
        body = await state["pool"].fetchval(BARE_SQL, uscc, claims["region"])
        if body is None:
            raise HTTPException(404)
        return Response(body, media_type="application/json")

    return app


def serve_bare(port: int, dsn: str) -> None:
    import uvicorn

    from shared.settings import DEV_JWT_SECRET

    uvicorn.run(bare_app(dsn, os.environ.get("ZJTX_JWT_SECRET", DEV_JWT_SECRET)), host="127.0.0.1", port=port,
                log_level="warning", access_log=False)


# ----------------------------------------------------------------------------------------------- load


def wrk(url: str, token: str, seconds: float) -> tuple[float, float, float, int]:
    """(req/s, p50 ms, p99 ms, non-2xx responses) from wrk with 16 connections on 2 threads."""
    out = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{int(seconds)}s", "--latency", "-H", f"Authorization: Bearer {token}",
         url], capture_output=True, text=True, check=True,
    ).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, ms("50%"), ms("99%"), int(bad.group(1)) if bad else 0


def pyload(url: str, token: str, seconds: float) -> tuple[float, float, float, int]:
    """The fallback load generator: 16 keep-alive httpx connections in one event loop."""
    import httpx

    async def run() -> tuple[float, float, float, int]:
        lat: list[float] = []
        bad = 0
        stop = time.perf_counter() + seconds

        async def one(client: httpx.AsyncClient) -> None:
            nonlocal bad
            while time.perf_counter() < stop:
                t = time.perf_counter()
                r = await client.get(url)
                lat.append((time.perf_counter() - t) * 1000)
                bad += r.status_code >= 400

        limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, limits=limits) as client:
            began = time.perf_counter()
            await asyncio.gather(*[one(client) for _ in range(CONNECTIONS)])
            took = time.perf_counter() - began
        lat.sort()
        return len(lat) / took, lat[len(lat) // 2], lat[int(len(lat) * 0.99)], bad

    return asyncio.run(run())


def load(url: str, token: str, seconds: float) -> tuple[float, float, float, int]:
    return (wrk if shutil.which("wrk") else pyload)(url, token, seconds)


def line(name: str, figures: tuple[float, float, float, int]) -> str:
    rps, p50, p99, bad = figures
    return f"{name:<62}{rps:>9.0f}{p50:>9.2f}{p99:>9.2f}" + (f"   {bad} non-2xx!" if bad else "")


# ----------------------------------------------------------------------------------------------- main


async def pick_enterprise(database_url: str) -> str:
    import asyncpg

    from shared.db import asyncpg_dsn

    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        # a 余杭 enterprise with a pool entry (and a title if there is one), as a busy one would have
        uscc = await conn.fetchval(
            "SELECT e.uscc FROM registry.enterprises e JOIN registry.pool_memberships m ON m.uscc = e.uscc "
            "WHERE e.region_code = '330110' AND m.exited_on IS NULL "
            "ORDER BY (SELECT count(*) FROM registry.recognitions r WHERE r.uscc = e.uscc) DESC, e.uscc LIMIT 1")
        if uscc is None:
            uscc = await conn.fetchval("SELECT uscc FROM registry.enterprises WHERE region_code = '330110' LIMIT 1")
        return str(uscc)
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per round")
    parser.add_argument("--rounds", type=int, default=2, help="registry/bare pairs, alternated")
    parser.add_argument("--demo-size", type=int, default=2000)
    parser.add_argument("--serve-bare", nargs=2, metavar=("PORT", "DSN"), help=argparse.SUPPRESS)
    args, _ = parser.parse_known_args()
    if args.serve_bare:
        serve_bare(int(args.serve_bare[0]), args.serve_bare[1])
        return

    from _stack import start_stack

    from shared.auth import issue_token
    from shared.db import asyncpg_dsn
    from shared.infra import free_port, port_open
    from shared.settings import Settings

    # one token at full speed: the per-token limit (2,000 req/s, bursts of 4,000) would answer 429 to what is
    # measured here; the buckets are still counted (the guard's cost stays in), just never empty
    unlimited = {"ZJTX_RATE_LIMIT_TOKEN": "1000000", "ZJTX_RATE_LIMIT_TOKEN_BURST": "2000000",
                 "ZJTX_RATE_LIMIT_IP": "1000000", "ZJTX_RATE_LIMIT_IP_BURST": "2000000"}
    stack = start_stack(args.demo_size, extra_env=unlimited)
    bare: subprocess.Popen[bytes] | None = None
    try:
        time.sleep(5)  # let the demo load's events run through first
        uscc = asyncio.run(pick_enterprise(stack.database_url))
        port = free_port()
        bare = subprocess.Popen([sys.executable, str(HERE), "--serve-bare", str(port), asyncpg_dsn(stack.database_url)],
                                env=os.environ | {"PYTHONPATH": str(HERE.parent.parent)})
        deadline = time.monotonic() + 30
        while not port_open(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        settings = Settings(service="registry")
        county = issue_token(settings, role="county_official", region="330110", sub="bench-county", ttl=7200)
        own = issue_token(settings, role="enterprise", region="330110", uscc=uscc, sub=f"ent-{uscc}", ttl=7200)
        generator = "wrk" if shutil.which("wrk") else "python (httpx; wrk not installed)"
        print(f"GET /api/v1/enterprises/{uscc}, county token 330110, {CONNECTIONS} keep-alive connections, "
              f"{generator}, {args.duration:.0f} s rounds alternated x{args.rounds}")
        print(f"{'':<62}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}")
        ours_url = f"{stack.url('registry')}/api/v1/enterprises/{uscc}"
        bare_url = f"http://127.0.0.1:{port}/api/v1/enterprises/{uscc}"
        load(ours_url, county, 2)  # warm both
        load(bare_url, county, 2)
        ours, theirs = [], []
        for i in range(args.rounds):
            ours.append(load(ours_url, county, args.duration))
            print(line(f"registry (round {i + 1})", ours[-1]), flush=True)
            theirs.append(load(bare_url, county, args.duration))
            print(line(f"bare FastAPI + asyncpg (round {i + 1})", theirs[-1]), flush=True)
        ratio = statistics.median(o[0] for o in ours) / statistics.median(t[0] for t in theirs)
        p50, p99 = statistics.median(o[1] for o in ours), statistics.median(o[2] for o in ours)
        print(f"ratio registry/bare {ratio:.2f} (target ≥ {TARGET:.2f}: {'met' if ratio >= TARGET else 'missed'}); "
              f"registry p99/p50 {p99 / p50:.1f} (target ≤ 3)")
        print(f"\nhot reads of the 企业码 app ({uscc}'s own token, or the county's where that is refused), "
              f"one {args.duration:.0f} s round each:")
        print(f"{'':<62}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}")
        for service, path in [
            ("evaluation", "/enterprises/{uscc}/evaluations"),
            ("evaluation", "/enterprises/{uscc}/recognitions"),
            ("finance", "/enterprises/{uscc}/entitlements"),
            ("notification", "/notifications"),
        ]:
            name, url = f"{service} GET {path}", stack.url(service) + "/api/v1" + path.replace("{uscc}", uscc)
            import httpx

            token, who = own, "enterprise"
            if httpx.get(url, headers={"Authorization": f"Bearer {own}"}, timeout=30).status_code != 200:
                token, who = county, "county"  # the enterprise's own token is refused here: read as its county
            figures = load(url, token, args.duration)
            print(line(f"{name} ({who})", figures), flush=True)
            if figures[3]:  # say what the failures were: the answer under load, then one request after it
                with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
                    answers = [client.get(url) for _ in range(3)]
                print(f"{'':<6}after the round: {[a.status_code for a in answers]} {answers[-1].text[:160]}")
    finally:
        if bare is not None:
            bare.terminate()
            bare.wait(10)
        stack.stop()


if __name__ == "__main__":
    main()
