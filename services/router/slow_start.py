"""Gradual return: a member that just came back gets a share of traffic that grows linearly
from 0 to 100 % over the slow-start window, instead of the full load at once (Envoy's slow start
mode does the same for hosts that join a cluster). Pure: time is passed in.

The share is handed out by a credit counter, not dice: each request adds the current share to the
member's credit and is admitted when a whole unit has built up. So at share s exactly a fraction
s of the requests go to the member, whatever the concurrency, and a test can count them.
"""

from dataclasses import dataclass, field


@dataclass
class SlowStart:
    window_s: float  # 0 = no ramp
    started: dict[str, float] = field(default_factory=dict)  # who came back when
    credit: dict[str, float] = field(default_factory=dict)

    def begin(self, key: str, now: float) -> None:
        """`key` (a provider/model, or a whole provider) is back as of `now`."""
        if self.window_s > 0:
            self.started[key] = now
            self.credit[key] = 0.0

    def share(self, keys: tuple[str, ...], now: float) -> float:
        """The fraction of traffic these keys may take now (the smallest of their ramps)."""
        share = 1.0
        for key in keys:
            at = self.started.get(key)
            if at is None:
                continue
            ramp = (now - at) / self.window_s
            if ramp >= 1.0:  # done: forget it
                del self.started[key]
                self.credit.pop(key, None)
                continue
            share = min(share, max(ramp, 0.0))
        return share

    def admit(self, member: str, provider: str, now: float) -> bool:
        """May this request go to `member` first? Always True outside a ramp."""
        share = self.share((member, provider), now)
        if share >= 1.0:
            return True
        credit = self.credit.get(member, 0.0) + share
        if credit >= 1.0:
            self.credit[member] = credit - 1.0
            return True
        self.credit[member] = credit
        return False
