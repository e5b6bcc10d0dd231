"""The peer in `make bench`: the LiteLLM proxy, the tool users would otherwise pick, measured
against the same simulated vendors as our router, with the same failover chain.

LiteLLM lives in its own virtualenv (bench/.litellm-venv, made on first use from PyPI) so its
large dependency tree never touches the project's. The proxy runs with LiteLLM's defaults (one
uvicorn worker, its default retries and cooldowns), no database, no master key, and every
remote fetch it would make at start (cost map, beta headers, ...) switched to its bundled copy.

    python -m bench.litellm_peer      # BENCH_N calls per section (default 500), prints JSON rows

Rows follow bench/__main__.py: {"name", "n", "cpu_ms", "p50_ms", "p99_ms", "rps"} plus
"server_cpu_ms" (the proxy's CPU per call, its child processes included) and "errors"
(client-visible failures: non-200 or timeout). The outage row also carries the simulator's
request counts, to show how many primary attempts each failed-over call cost.
"""

import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp

from services.runtime.natsd import free_port

# Tested on this machine. 1.103.8 and later require certifi>=2026.10.19, which the index
# reachable here does not have yet; the exact pin keeps runs comparable across machines.
LITELLM_VERSION = "1.103.7"
LITELLM_REQUIREMENT = f"litellm[proxy]=={LITELLM_VERSION}"
LITELLM_MIN_VERSION = (1, 100)  # the oldest config format this module was checked against

REPO_ROOT = Path(__file__).resolve().parents[1]
SECTION_LIMIT_S = 120.0  # each measured section stops starting calls after this
REQUEST_TIMEOUT_S = 30.0
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 10.0
MESSAGES = [{"role": "user", "content": "What is your refund policy?"}]
PRIMARY_GROUP = "chat"
FALLBACK_GROUP = "chat-anthropic"  # LiteLLM falls back between model groups, not deployments

# Everything LiteLLM would fetch from the internet at start or on first use, from its bundled copy.
_OFFLINE_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
    "LITELLM_LOCAL_BLOG_POSTS": "True",
    "LITELLM_LOCAL_AUTOROUTER_PRESETS": "True",
    "LITELLM_LOCAL_POLICY_TEMPLATES": "True",
}
# Variables that would point the proxy at a database, a cache or an observability backend.
_SCRUBBED_ENV = ("DATABASE_URL", "DIRECT_URL", "REDIS_HOST", "REDIS_URL", "LITELLM_MASTER_KEY",
                 "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "STORE_MODEL_IN_DB", "LANGFUSE_PUBLIC_KEY",
                 "OTEL_EXPORTER", "OTEL_ENDPOINT", "SENTRY_DSN", "DD_API_KEY")

_workdirs: dict[int, Path] = {}  # pid of each proxy we started -> its temp dir (config, log)


# --- the virtualenv -------------------------------------------------------------------------

def ensure_litellm_venv(path: Path = Path("bench/.litellm-venv")) -> Path:
    """A virtualenv with LiteLLM's proxy, made and installed on first use; its `litellm` executable.

    Idempotent: a stamp file holding the requirement marks a finished install, and a changed pin
    reinstalls. A relative path is taken from the repository root, not the working directory.
    """
    venv = path if path.is_absolute() else REPO_ROOT / path
    exe = venv / "bin" / "litellm"
    stamp = venv / ".installed"
    if exe.exists() and stamp.exists() and stamp.read_text().strip() == LITELLM_REQUIREMENT:
        return exe
    python = venv / "bin" / "python"
    if not python.exists():
        base = shutil.which("python3") or sys.executable
        subprocess.run([base, "-m", "venv", str(venv)], check=True, timeout=300)
    log = venv / "pip-install.log"
    with open(log, "wb") as out:
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "--disable-pip-version-check", LITELLM_REQUIREMENT],
            stdout=out, stderr=subprocess.STDOUT, timeout=1800,
        )
    if done.returncode != 0 or not exe.exists():
        tail = [ln for ln in log.read_text(errors="replace").splitlines() if not ln.startswith("WARNING:")]
        raise RuntimeError(f"installing {LITELLM_REQUIREMENT} into {venv} failed:\n" + "\n".join(tail[-15:]))
    installed = subprocess.run([str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
                               capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    if tuple(int(p) for p in installed.split(".")[:2]) < LITELLM_MIN_VERSION:
        raise RuntimeError(f"litellm {installed} in {venv} is older than {LITELLM_MIN_VERSION}")
    stamp.write_text(LITELLM_REQUIREMENT + "\n")
    return exe


# --- the proxy ------------------------------------------------------------------------------

def litellm_config(sim_port: int) -> dict:
    """The proxy config: group `chat` = the simulator's openai, falling back to its anthropic.

    The same chain as lifeline.yaml's route `chat` (its third link, `local`, stands for a
    self-hosted model; neither side reaches it in this benchmark). Fallbacks go under
    router_settings as LiteLLM documents ("Fallbacks (Provider Failover)"); all else default.
    """
    sim = f"http://127.0.0.1:{sim_port}"
    return {
        "model_list": [
            {"model_name": PRIMARY_GROUP,
             "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": f"{sim}/openai/v1",
                                "api_key": "sk-sim"}},
            {"model_name": FALLBACK_GROUP,
             "litellm_params": {"model": "anthropic/claude-haiku-4-5", "api_base": f"{sim}/anthropic",
                                "api_key": "sk-sim"}},
        ],
        "router_settings": {"fallbacks": [{PRIMARY_GROUP: [FALLBACK_GROUP]}]},
    }


def start_litellm(sim_port: int, *, port: int | None = None,
                  ready_timeout: float = READY_TIMEOUT_S) -> tuple[subprocess.Popen[bytes], str]:
    """Start the LiteLLM proxy in front of the simulator; (process, base URL) once it is ready."""
    exe = ensure_litellm_venv()
    port = port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix="litellm-peer-"))
    config = workdir / "config.yaml"
    config.write_text(json.dumps(litellm_config(sim_port), indent=2))  # JSON is YAML
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV and not k.startswith("VIRTUAL_ENV")}
    env.update(_OFFLINE_ENV)
    with open(workdir / "proxy.log", "wb") as log:
        # cwd = the temp dir: in DEV mode LiteLLM loads a .env from its working directory.
        proc = subprocess.Popen(
            [str(exe), "--config", str(config), "--host", "127.0.0.1", "--port", str(port), "--telemetry", "False"],
            cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _workdirs[proc.pid] = workdir
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_timeout
    while True:
        if proc.poll() is not None:
            tail = (workdir / "proxy.log").read_text(errors="replace")[-3000:]
            stop_litellm(proc)
            raise RuntimeError(f"litellm proxy exited with {proc.returncode} before it was ready:\n{tail}")
        try:
            with urllib.request.urlopen(f"{base_url}/health/readiness", timeout=2) as reply:
                if reply.status == 200:
                    return proc, base_url
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            stop_litellm(proc)
            raise TimeoutError(f"litellm proxy not ready on {base_url} after {ready_timeout:.0f} s")
        time.sleep(0.25)


def stop_litellm(proc: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM the proxy we started, SIGKILL its process group after `timeout`; drop its temp dir."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    try:  # its own session (start_new_session): leftover workers of ours, if it forked any
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait(timeout)
    workdir = _workdirs.pop(proc.pid, None)
    if workdir is not None:
        shutil.rmtree(workdir, ignore_errors=True)


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            out += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return out


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of a process and all its descendants, live or reaped (Linux /proc)."""
    total, todo, seen = 0, [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
        todo += _children(p)
    return total / os.sysconf("SC_CLK_TCK")


# --- measuring ------------------------------------------------------------------------------

def _quantiles_ms(latencies: list[float]) -> tuple[float | None, float | None]:
    if len(latencies) < 2:
        return (latencies[0] * 1000, latencies[0] * 1000) if latencies else (None, None)
    q = statistics.quantiles(latencies, n=100)
    return q[49] * 1000, q[98] * 1000


async def _call(session: aiohttp.ClientSession, url: str, body: bytes) -> bool:
    """One chat completion through the proxy: True on a 200 with a JSON body, False otherwise."""
    try:
        async with session.post(url, data=body, headers={"content-type": "application/json"}) as reply:
            data = await reply.read()
            return reply.status == 200 and data.startswith(b"{")
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return False


async def _run(name: str, session: aiohttp.ClientSession, url: str, n: int, concurrency: int,
               proxy_pid: int, limit_s: float = SECTION_LIMIT_S) -> dict:
    """n calls, `concurrency` at a time, none started after `limit_s`; one row with latencies of
    every call (failed ones too: a client waits for those as well), CPU of both sides, errors."""
    body = json.dumps({"model": PRIMARY_GROUP, "messages": MESSAGES, "max_tokens": 64}).encode()
    latencies: list[float] = []
    errors = 0
    issued = 0
    cpu0, server0, wall0 = time.process_time(), tree_cpu_s(proxy_pid), time.perf_counter()
    deadline = wall0 + limit_s

    async def worker() -> None:
        nonlocal issued, errors
        while issued < n and time.perf_counter() < deadline:
            issued += 1
            t = time.perf_counter()
            ok = await _call(session, url, body)
            latencies.append(time.perf_counter() - t)
            errors += not ok

    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, n)))))
    wall = time.perf_counter() - wall0
    done = len(latencies)
    p50, p99 = _quantiles_ms(latencies)
    return {"name": name, "n": done, "cpu_ms": (time.process_time() - cpu0) / max(done, 1) * 1000,
            "server_cpu_ms": (tree_cpu_s(proxy_pid) - server0) / max(done, 1) * 1000,
            "p50_ms": p50, "p99_ms": p99, "rps": done / wall, "errors": errors,
            "concurrency": concurrency, "truncated": done < n}


async def _sim(session: aiohttp.ClientSession, sim: str, method: str, path: str, payload: dict | None = None) -> dict:
    async with session.request(method, f"{sim}{path}", json=payload) as reply:
        reply.raise_for_status()
        return await reply.json()


async def _requests(session: aiohttp.ClientSession, sim: str) -> dict[str, int]:
    vendors = (await _sim(session, sim, "GET", "/_sim/vendors"))["vendors"]
    return {name: v["requests"]["total"] for name, v in vendors.items()}


async def run_peer(sim_port: int, n: int, concurrency: int) -> list[dict]:
    """Rows for the LiteLLM proxy in front of the simulator on `sim_port`: sequential latency over
    n calls, throughput with `concurrency` in flight, and the same with the openai vendor down."""
    proc, base = await asyncio.to_thread(start_litellm, sim_port)
    sim = f"http://127.0.0.1:{sim_port}"
    url = f"{base}/v1/chat/completions"
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    try:
        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:
            warm = await _run("warm-up", session, url, min(50, n), 1, proc.pid)
            if warm["errors"]:
                raise RuntimeError(f"litellm proxy failed {warm['errors']} of {warm['n']} warm-up calls")
            rows = [
                await _run("litellm proxy -> simulator (sequential)", session, url, n, 1, proc.pid),
                await _run(f"litellm proxy, {concurrency} at a time", session, url, n, concurrency, proc.pid),
            ]
            before = await _requests(session, sim)
            await _sim(session, sim, "PUT", "/_sim/vendors/openai", {"mode": "down"})
            try:
                row = await _run(f"litellm proxy, {concurrency} at a time, openai down", session, url, n,
                                 concurrency, proc.pid)
            finally:
                await _sim(session, sim, "PUT", "/_sim/vendors/openai", {"mode": "ok"})
            after = await _requests(session, sim)
            hits = {name: after[name] - before.get(name, 0) for name in after}
            row["vendor_requests"] = hits
            row["primary_attempts_per_call"] = hits.get("openai", 0) / max(row["n"], 1)
            rows.append(row)
            return rows
    finally:
        await asyncio.to_thread(stop_litellm, proc)


# --- `python -m bench.litellm_peer` ---------------------------------------------------------

def _start_simulator(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "services.simulator", "--port", str(port)],
                            cwd=REPO_ROOT, stdout=subprocess.PIPE)
    line = proc.stdout.readline() if proc.stdout else b""
    if not line.startswith(b"simulator listening"):
        proc.kill()
        proc.wait(STOP_TIMEOUT_S)
        raise RuntimeError(f"simulator did not start: {line!r}")
    return proc


async def main() -> None:
    n = int(os.environ.get("BENCH_N", "500"))
    levels = [int(c) for c in os.environ.get("BENCH_PEER_CONCURRENCY", "50,16").split(",") if c.strip()]
    t0 = time.perf_counter()
    ensure_litellm_venv()
    print(f"litellm venv ready in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    port = free_port()
    sim = _start_simulator(port)
    try:
        rows: list[dict] = []
        for concurrency in levels:
            rows += await run_peer(port, n, concurrency)
        print(json.dumps(rows, indent=2))
    finally:
        sim.terminate()
        try:
            sim.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            sim.kill()
            sim.wait(STOP_TIMEOUT_S)


if __name__ == "__main__":
    asyncio.run(main())
