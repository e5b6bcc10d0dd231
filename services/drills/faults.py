"""How a drill breaks things, and mends them.

- A simulated vendor: the simulator's control API (`PUT /_sim/vendors/<name>`), any fault mode.
- A real vendor: never broken. The router-side fault switch (control KV `fault.<provider>`) makes
  every router treat it as failing - no call goes out, the equivalent of disabling its key.
- A process (service-crash, bus-node-loss): SIGKILL by PID. A service instance is found by its
  name (LIFELINE_INSTANCE, which `lifeline up` and the mesh set) in /proc on this host.
"""

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import aiohttp

from schemas.control import ProviderFault, fault_key
from schemas.streams import CONTROL

from .bus import DrillBus, DrillError

Via = Literal["auto", "simulator", "router"]


class ProviderFaults:
    def __init__(self, bus: DrillBus, *, simulator_url: str, simulated: set[str], via: Via,
                 actor: str) -> None:
        self.bus = bus
        self.simulator_url = simulator_url.rstrip("/")
        self.simulated = simulated
        self.via = via
        self.actor = actor
        self.broken: dict[str, str] = {}  # provider -> "simulator:<mode>" | "fault switch"

    def how(self, provider: str, mode: str) -> str:
        """Where this fault is injected; DrillError if it cannot be injected safely."""
        use_sim = provider in self.simulated if self.via == "auto" else self.via == "simulator"
        if use_sim and provider not in self.simulated:
            raise DrillError(f"{provider} uses a real key, not the simulator: a drill never breaks a "
                             "real vendor (use --via router: the router-side fault switch)")
        if not use_sim and mode not in ("down", "refuse"):
            raise DrillError(f"mode {mode!r} on {provider} needs the simulator: the fault switch can "
                             "only make a provider fail (use a simulated provider, or provider-outage)")
        return f"simulator:{mode}" if use_sim else "fault switch"

    async def inject(self, provider: str, mode: str, reason: str, **settings: Any) -> str:
        how = self.how(provider, mode)
        if how == "fault switch":
            fault = ProviderFault(active=True, reason=reason, actor=self.actor)
            await self.bus.kv_put(CONTROL.name, fault_key(provider), fault.model_dump_json().encode())
        else:
            await self._simulator(provider, {"mode": mode, **settings})
        self.broken[provider] = how
        return how

    async def restore(self, provider: str) -> None:
        how = self.broken.pop(provider, None)
        if how == "fault switch":
            await self.bus.kv_delete(CONTROL.name, fault_key(provider))
        elif how is not None:
            await self._simulator(provider, {"mode": "ok"})

    async def restore_all(self) -> None:
        for provider in list(self.broken):
            await self.restore(provider)

    async def _simulator(self, vendor: str, body: dict[str, Any]) -> None:
        url = f"{self.simulator_url}/_sim/vendors/{vendor}"
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http, \
                    http.put(url, json=body) as r:
                if r.status != 200:
                    raise DrillError(f"the simulator refused {body} for {vendor}: {await r.text()}")
        except (aiohttp.ClientError, TimeoutError) as e:
            raise DrillError(f"cannot reach the simulator at {self.simulator_url} ({e!r})") from None


def _processes() -> Iterator[tuple[int, list[str], dict[str, str]]]:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            env = dict(item.split(b"=", 1) for item in (entry / "environ").read_bytes().split(b"\0")
                       if b"=" in item)
        except OSError:  # gone, or another user's process
            continue
        yield (int(entry.name), [a.decode(errors="replace") for a in argv if a],
               {k.decode(errors="replace"): v.decode(errors="replace") for k, v in env.items()})


def find_service_pid(instance: str, module: str) -> int:
    """The PID of the process running `python -m <module>` as LIFELINE_INSTANCE=<instance>."""
    found = [pid for pid, argv, env in _processes()
             if env.get("LIFELINE_INSTANCE") == instance and module in argv]
    if len(found) != 1:
        raise DrillError(f"{'no' if not found else 'more than one'} process of {module} named "
                         f"{instance!r} on this host; pass --pid")
    return found[0]


def find_nats_pid(port: int) -> int:
    """The PID of the nats-server on this host listening on `port` (started with -p PORT)."""
    found = [pid for pid, argv, _ in _processes()
             if argv and Path(argv[0]).name == "nats-server"
             and any(a in ("-p", "--port") and i + 1 < len(argv) and argv[i + 1] == str(port)
                     for i, a in enumerate(argv))]
    if len(found) != 1:
        raise DrillError(f"no single nats-server with -p {port} on this host; pass --pid")
    return found[0]


def kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        raise DrillError(f"no process {pid}") from None
    except PermissionError:
        raise DrillError(f"not allowed to kill process {pid}") from None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A killed child of ours stays a zombie until reaped: not alive for our purpose.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
