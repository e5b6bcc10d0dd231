"""The README's walkthrough, command by command: `lifeline up`, ask, chaos, status, Ctrl-C."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from schemas import subjects
from schemas.streams import LLM_RESULTS
from services.runtime.natsd import free_port, is_reachable
from tests.e2e.conftest import write_config

LIFELINE = str(Path(sys.executable).parent / "lifeline")
QUESTION = "What is your refund policy?"


class Up:
    """`lifeline up` in the background, its output collected line by line."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.proc = subprocess.Popen([LIFELINE, "up"], env=env, cwd=cwd, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if "Ctrl-C stops all." in line:  # the last line of the announcement
                self.ready.set()
        self.ready.set()  # exited: let the waiter see it

    @property
    def output(self) -> str:
        return "".join(self.lines)


@pytest.fixture
def walkthrough_env(tmp_path: Path) -> dict[str, str]:
    sim_port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "LOCAL_LLM_API_KEY")}
    env.update({
        "NATS_URL": f"nats://127.0.0.1:{free_port()}",  # nothing there: `up` embeds nats-server
        "LIFELINE_HOME": str(tmp_path / "home"),
        "LIFELINE_SIMULATOR_PORT": str(sim_port),
        "LIFELINE_SIMULATOR_URL": f"http://127.0.0.1:{sim_port}",
        "LIFELINE_GATEWAY_PORT": str(free_port()),
        "LIFELINE_STATUS_PORT": str(free_port()),
        "LIFELINE_CONFIG": str(write_config(tmp_path / "lifeline.yaml", attempt_timeout_ms=1000)),
    })
    return env


@pytest.fixture
def up(walkthrough_env: dict[str, str], tmp_path: Path) -> Iterator[Up]:
    running = Up(walkthrough_env, tmp_path)
    assert running.ready.wait(60), running.output
    assert running.proc.poll() is None, running.output
    yield running
    if running.proc.poll() is None:
        running.proc.send_signal(signal.SIGINT)
        running.proc.wait(60)


def lifeline(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LIFELINE, *args], env=env, capture_output=True, text=True, timeout=60)


def ask_json(env: dict[str, str]) -> dict:
    done = lifeline(env, "ask", QUESTION, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def ask_until_full(env: dict[str, str], within: float = 20.0) -> dict:
    deadline = time.monotonic() + within
    while (result := ask_json(env))["tier"] != "full" and time.monotonic() < deadline:
        pass  # each ask is a whole CLI process: about a second apart
    return result


async def parked_answer(url: str, ticket: str, *, within: float) -> dict:
    """The answer the queue tier publishes on llm.result.<ticket> (kept in LLM_RESULTS): already
    stored, or awaited."""
    nc = await nats.connect(url)
    try:
        sub = await nc.jetstream().subscribe(subjects.llm_result(ticket), stream=LLM_RESULTS.name,
                                             ordered_consumer=True)
        msg = await sub.next_msg(timeout=within)
        return json.loads(msg.data)
    finally:
        await nc.close()


def test_up_ask_chaos_status_and_ctrl_c(up: Up, walkthrough_env: dict[str, str]):
    env = walkthrough_env
    assert "embedded nats-server" in up.output

    result = ask_json(env)
    assert (result["status"], result["tier"], result["provider"], result["fallback_depth"]) == (
        "ok", "full", "openai", 0)
    plain = lifeline(env, "ask", QUESTION)
    assert plain.returncode == 0
    assert "[openai/gpt-4o-mini] You asked: What is your refund policy" in plain.stdout
    assert "tier full · openai/gpt-4o-mini · fallback depth 0" in plain.stdout

    for mode, extra in [("down", []), ("refuse", []), ("slow", ["--latency-ms", "3000"]),
                        ("garbage", [])]:
        assert lifeline(env, "chaos", "openai", mode, *extra).returncode == 0
        result = ask_json(env)
        assert (result["status"], result["tier"], result["provider"], result["fallback_depth"]) == (
            "ok", "degraded", "anthropic", 1), (mode, result)
        assert "error" not in result or result["error"] is None
        assert lifeline(env, "chaos", "openai", "ok").returncode == 0
        # The health monitor may have called openai down meanwhile (then the router skips it):
        # back to full once it has seen openai answer again (a few probes, seconds).
        assert ask_until_full(env)["tier"] == "full", mode

    # Every vendor down (the README's next lines): the FAQ answers what it knows, anything else is
    # parked with --queue and answered once a vendor is back.
    for vendor in ("openai", "anthropic", "local"):
        assert lifeline(env, "chaos", vendor, "down").returncode == 0
    done = lifeline(env, "ask", "How do I reset my password?", "--json")
    faq = json.loads(done.stdout)
    assert (faq["status"], faq["tier"], faq["answered_by"]) == ("ok", "minimal", "faq:password-reset"), faq
    done = lifeline(env, "ask", "Summarise my contract", "--queue", "--json")
    parked = json.loads(done.stdout)
    assert (parked["status"], parked["tier"]) == ("queued", "emergency") and parked["ticket"], parked
    for vendor in ("openai", "anthropic", "local"):
        assert lifeline(env, "chaos", vendor, "ok").returncode == 0
    answer = asyncio.run(parked_answer(env["NATS_URL"], parked["ticket"], within=60))
    assert answer["status"] == "ok" and answer["tier"] in ("full", "degraded"), answer

    status = lifeline(env, "status", "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert list(report["services"]["router"]) == ["router"]
    assert report["providers"]["openai"]["simulated"] is True
    # Two answers and, per mode, at least one answer after `ok` (a failing ask is not counted
    # when the health monitor had already taken openai out of rotation).
    assert report["providers"]["openai"]["requests"] >= 6
    assert report["providers"]["openai"]["state"] in ("up", "degraded", "down")

    up.proc.send_signal(signal.SIGINT)
    assert up.proc.wait(60) == 0, up.output
    assert "stopped." in up.output
    assert not is_reachable(env["NATS_URL"])


def test_bad_commands_say_what_was_wrong(walkthrough_env: dict[str, str]):
    env = walkthrough_env
    done = lifeline(env, "ask", QUESTION)
    assert done.returncode == 2
    assert "cannot reach NATS" in done.stdout and "make run" in done.stdout
    done = lifeline(env, "chaos", "nobody", "down")
    assert done.returncode == 2 and "unknown provider 'nobody'" in done.stdout
