"""The README's walkthrough runs as written on a fresh dev stack (issue 15 item 5).

The shell block(s) of README.md's "A walk through the programme" section are run by bash (``set -euo
pipefail``) against ``zjtx run --demo-size 30`` on a random port base. ``curl`` is wrapped by a shim that passes
every argument to the real curl, records method, URL and HTTP status, and fails the command on a 4xx/5xx, so a
step the README gets wrong stops the script (polling loops tolerate it). Then the final state is checked over
HTTP: both titles in registry, the 余杭 entitlement paid once by the gateway, the commissioner assigned, the
notices in the inbox and at the SMS stand-in. The dev clock's guards (admin only, refused in prod, audited)
are checked in-process.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import text

from shared.auth import issue_token
from shared.infra import free_port, port_open
from tests.e2e.test_run_command import _get
from tests.harness import auth, engine_for, running_service, settings

REPO = Path(__file__).resolve().parents[2]
USCC = "91330110MA27XX0072"  # the README's enterprise
MOBILE = "13912345678"

SHIM = r"""#!/usr/bin/env bash
# curl, recording "METHOD URL STATUS" per call; a 4xx/5xx answer fails the command (exit 22)
out=$("$ZJTX_REAL_CURL" -w '\n%{http_code}' "$@"); rc=$?
code=${out##*$'\n'}; body=${out%$'\n'*}
printf '%s' "$body"
method=GET; prev=; url=
for a in "$@"; do
  [[ $prev == -X ]] && method=$a
  [[ $a == localhost:* || $a == http://* ]] && url=$a
  prev=$a
done
echo "$method $url $code" >> "$ZJTX_CURL_LOG"
[[ $rc -ne 0 ]] && exit $rc
[[ $code -ge 400 ]] && exit 22
exit 0
"""


def walkthrough() -> str:
    """The bash blocks of the README's walkthrough section, in order."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    start = readme.index("## A walk through the programme")
    end = readme.find("\n## ", start + 1)
    section = readme[start : end if end > 0 else None]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    assert blocks, "the walkthrough section has no bash block"
    return "\n".join(blocks)


def _token(env: dict[str, str], *args: str) -> str:
    out = subprocess.run([str(REPO / ".venv" / "bin" / "zjtx"), "token", *args], env=env, cwd=REPO,
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


@pytest.mark.e2e
def test_readme_walkthrough_runs_as_written(tmp_path: Path) -> None:
    real_curl, jq = shutil.which("curl"), shutil.which("jq")
    assert real_curl and jq, "the walkthrough needs curl and jq"
    script = walkthrough()
    base = 20000 + (free_port() % 20000)
    while any(port_open(base + i) for i in (1, 2, 3, 4, 5, 25, 90, 91)):
        base = 20000 + (free_port() % 20000)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZJTX_")} | {
        "ZJTX_HOME": str(tmp_path / "home"),
        "ZJTX_DEV_PORT_BASE": str(base),
        "ZJTX_DEV_KAFKA_PORT": str(free_port()),
        "ZJTX_LOG_LEVEL": "WARNING",
    }
    run_log = tmp_path / "run.log"
    with run_log.open("w") as sink:  # a file, not a pipe: nobody reads the supervisor while the script runs
        proc = subprocess.Popen([sys.executable, "-m", "shared.cli", "run", "--demo-size", "30"], cwd=REPO,
                                env=env, stdout=sink, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 150
        while "is up in" not in run_log.read_text() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert "is up in" in run_log.read_text(), run_log.read_text()[-3000:]

        shim_dir = tmp_path / "bin"
        shim_dir.mkdir()
        (shim_dir / "curl").write_text(SHIM)
        (shim_dir / "curl").chmod(0o755)
        log = tmp_path / "curl.log"
        run_env = env | {"PATH": f"{shim_dir}:{env.get('PATH', '')}", "ZJTX_REAL_CURL": real_curl,
                         "ZJTX_CURL_LOG": str(log)}
        started = time.monotonic()
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=REPO, env=run_env,
                              capture_output=True, text=True, timeout=120)
        took = time.monotonic() - started
        calls = log.read_text().splitlines() if log.exists() else []
        assert done.returncode == 0, (done.returncode, done.stderr[-3000:], done.stdout[-3000:], calls[-10:])

        # each step answered what it should (polling calls aside)
        def status_of(method: str, path_re: str) -> list[str]:
            return [c.rsplit(" ", 1)[1] for c in calls
                    if c.startswith(method + " ") and re.search(path_re, c.split(" ")[1])]

        assert status_of("PUT", r"/api/v1/dev/clock$") == ["200", "200", "200"], calls
        assert status_of("DELETE", r"/api/v1/dev/clock$") == ["200"], calls
        assert status_of("POST", r"/api/v1/enterprises$") == ["201"], calls
        assert status_of("PUT", rf"/enterprises/{USCC}/indicators/2025$") == ["200"], calls
        assert status_of("POST", r"/api/v1/applications$") == ["201", "201"], calls
        assert status_of("POST", r"/applications/[\w-]+/reviews$") == ["200"] * 6, calls
        assert status_of("POST", r"/applications/[\w-]+/announce$") == ["200", "200"], calls
        assert status_of("POST", r"/entitlements/[\w-]+/approve$") == ["200"], calls
        assert status_of("POST", r"/api/v1/budgets$") == ["201"], calls
        assert status_of("POST", r"/budgets/changes/[\w-]+/approve$") == ["200"], calls
        assert all(int(c.rsplit(" ", 1)[1]) < 500 for c in calls), calls
        out = done.stdout
        assert '"state":"publicity"' in out and '"tier":"srdi"' in out, out[-3000:]
        assert '"decided_by":"county-330110-b"' in out and '"status":"approved"' in out, out[-3000:]

        # the final state, read back
        reg, fin, nt = (f"http://127.0.0.1:{base + i}" for i in (1, 3, 4))
        county = _token(env, "--role", "county_official", "--region", "330110", "--sub", "county-330110-a")
        ent_token = _token(env, "--role", "enterprise", "--region", "330110", "--uscc", USCC)
        status, body = _get(f"{reg}/api/v1/enterprises/{USCC}", ent_token)
        assert status == 200, body
        assert {t["tier"] for t in body["current_tiers"]} == {"innovative", "srdi"}, body["current_tiers"]
        status, ents = _get(f"{fin}/api/v1/enterprises/{USCC}/entitlements", ent_token)
        assert status == 200, ents
        srdi = {e["jurisdiction"]: e for e in ents if e["subject"] == "tier:srdi:province"}
        assert set(srdi) == {"330110", "330100"}, ents
        assert srdi["330110"]["status"] == "paid" and srdi["330110"]["decided_by"] == "county-330110-b", srdi
        assert srdi["330100"]["status"] == "pending", srdi
        assert not [e for e in ents if e["subject"].startswith("tier:innovative")], ents
        _, gw = _get(f"http://127.0.0.1:{base + 90}/_state")
        paid = [p for p in gw["payments"] if p["payee_uscc"] == USCC]
        assert len(paid) == 1 and paid[0]["amount"] == srdi["330110"]["amount"] == "200000.00", paid
        status, cm = _get(f"{nt}/api/v1/enterprises/{USCC}/commissioner", county)
        assert status == 200 and cm["commissioner"]["id"] and cm["level"] == "county", cm
        status, inbox = _get(f"{nt}/api/v1/notifications?limit=100", ent_token)
        assert status == 200, inbox
        kinds = Counter(n["template_code"] for n in inbox["items"] if n["uscc"] == USCC)
        assert kinds["tier_recognised"] == 2 and kinds["disbursement_paid"] == 1, kinds
        assert kinds["commissioner_assigned_enterprise"] == 1 and kinds["entitlement_approved"] == 1, kinds
        _, sms = _get(f"http://127.0.0.1:{base + 91}/sms?to={MOBILE}&limit=100")
        assert any("200000.00" in m["text"] and "拨付" in m["text"] for m in sms), sms
        print(f"walkthrough: {len(calls)} curl calls in {took:.1f}s")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    assert proc.returncode == 0, run_log.read_text()[-3000:]


@pytest.mark.e2e
async def test_dev_clock_is_admin_only_audited_and_refused_in_prod() -> None:
    admin, county = auth("admin", "330000"), auth("county_official", "330110")
    async with running_service("evaluation") as (_, ev):
        r = await ev.put("/api/v1/dev/clock", json={"as_of": "2026-11-09"}, headers=county)
        assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json"), r.text
        r = await ev.put("/api/v1/dev/clock", json={"as_of": "2026-13-40"}, headers=admin)
        assert r.status_code == 422 and "as_of" in r.text, r.text
        try:
            r = await ev.put("/api/v1/dev/clock", json={"as_of": "2026-11-09"}, headers=admin)
            assert r.status_code == 200, r.text
            assert r.json()["decision_date"] == "2026-11-09" and r.json()["source"] == "dev_clock"
            assert (await ev.get("/api/v1/dev/clock", headers=county)).json()["decision_date"] == "2026-11-09"
        finally:
            r = await ev.delete("/api/v1/dev/clock", headers=admin)
        assert r.status_code == 200 and r.json()["source"] != "dev_clock", r.text
    engine = engine_for("evaluation")
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT action, actor, after FROM evaluation.audit_log WHERE object_type = 'dev_clock' ORDER BY id"
            ))).all()
    finally:
        await engine.dispose()
    assert [a for a, _, _ in rows[-2:]] == ["dev.clock.set", "dev.clock.reset"], rows
    assert rows[-2][1] == rows[-1][1] and rows[-2][2] == {"as_of": "2026-11-09"}, rows
    prod = settings("evaluation", env="prod", jwt_secret="prod-secret-" + "x" * 40)
    prod_admin = {"Authorization": "Bearer " + issue_token(prod, role="admin", region="330000")}
    async with running_service("evaluation", env="prod", jwt_secret=prod.jwt_secret) as (_, ev):
        r = await ev.put("/api/v1/dev/clock", json={"as_of": "2026-11-09"}, headers=prod_admin)
        assert r.status_code == 403 and "生产环境" in r.json()["detail"], r.text
