"""The mesh as separate processes: what `lifeline up` runs, and what the e2e tests run.

Every child is one of our real services started with `python -m`, so a test that kills one is
killing exactly what production runs.
"""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from services.runtime.natsd import free_port

# Every service that exists, by module. Later services add themselves here.
SERVICES: dict[str, str] = {
    "router": "services.router",
    "health-monitor": "services.health_monitor",
    "cost-guard": "services.cost_guard",
    "conversation-store": "services.conversation_store",
    "backup-agent": "services.backup_agent",
    "notifier": "services.notifier",
    "gateway": "services.gateway",
}


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    health_url: str | None
    log: Path
    ready_path: str = "/readyz"


@dataclass
class Mesh:
    nats_url: str
    home: Path
    simulator_port: int = 8410
    gateway_port: int = 8400
    status_port: int = 8401
    db_url: str | None = None  # None: each service's default (SQLite under LIFELINE_HOME)
    env: dict[str, str] = field(default_factory=dict)
    children: dict[str, Child] = field(default_factory=dict)

    @property
    def simulator_url(self) -> str:
        return f"http://127.0.0.1:{self.simulator_port}"

    def _env(self, extra: dict[str, str]) -> dict[str, str]:
        env = {**os.environ, "NATS_URL": self.nats_url, "LIFELINE_HOME": str(self.home),
               "LIFELINE_SIMULATOR_URL": self.simulator_url,
               "LIFELINE_GATEWAY_PORT": str(self.gateway_port),
               "LIFELINE_STATUS_PORT": str(self.status_port)}
        if self.db_url:
            env["LIFELINE_DB_URL"] = self.db_url
        return {**env, **self.env, **extra}

    def start_simulator(self, *, timeout: float = 10.0) -> Child:
        log = self.home / "logs" / "simulator.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "services.simulator", "--port", str(self.simulator_port)],
                stdout=out, stderr=subprocess.STDOUT, env=self._env({}),
            )
        child = Child("simulator", proc, self.simulator_url, log, ready_path="/healthz")
        self.children["simulator"] = child
        _wait_http(f"{self.simulator_url}/healthz", proc, log, timeout)
        return child

    def start_service(self, service: str, *, instance: str | None = None,
                      env: dict[str, str] | None = None) -> Child:
        name = instance or service
        port = free_port()
        log = self.home / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", SERVICES[service]], stdout=out, stderr=subprocess.STDOUT,
                env=self._env({"LIFELINE_HEALTH_PORT": str(port), "LIFELINE_INSTANCE": name,
                               **(env or {})}),
            )
        child = Child(name, proc, f"http://127.0.0.1:{port}", log)
        self.children[name] = child
        return child

    def wait_ready(self, names: list[str] | None = None, *, timeout: float = 30.0) -> None:
        for name in names or list(self.children):
            child = self.children[name]
            _wait_http(f"{child.health_url}{child.ready_path}", child.proc, child.log, timeout)

    def signal(self, name: str, sig: signal.Signals) -> None:
        self.children[name].proc.send_signal(sig)

    def stop(self, name: str, *, timeout: float = 30.0) -> int:
        child = self.children.pop(name)
        if child.proc.poll() is None:
            child.proc.send_signal(signal.SIGTERM)
            try:
                child.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()
        return child.proc.returncode

    def stop_all(self, *, timeout: float = 30.0) -> dict[str, int]:
        # Services first (they drain through the bus), the simulator last.
        order = sorted(self.children, key=lambda n: n == "simulator")
        for name in order:
            if self.children[name].proc.poll() is None:
                self.children[name].proc.send_signal(signal.SIGTERM)
        return {name: self.stop(name, timeout=timeout) for name in order}


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{log.stem} exited with {proc.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=0.5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} not ready within {timeout}s; see {log}")
