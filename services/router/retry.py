"""Retries of the same member, bounded so they cannot become a thundering herd. Pure.

The budget follows Finagle's RetryBudget (twitter.github.io/finagle, "Retries"): over a sliding
window, retries may add at most `ratio` x the requests seen, plus a small floor of `min_per_s`
so that a quiet route can still retry once. Hedged attempts spend from the same budget: both are
extra load on vendors. Backoff between attempts is "full jitter" (AWS Architecture Blog,
"Exponential Backoff And Jitter"): a uniform draw in [0, min(cap, base x 2^n)].
"""

import random
from collections import deque
from dataclasses import dataclass, field


@dataclass
class RetryBudget:
    ratio: float  # extra calls per request, at most
    window_s: float
    min_per_s: float = 0.0
    requests: deque[float] = field(default_factory=deque)
    spent: deque[float] = field(default_factory=deque)

    def request(self, now: float) -> None:
        """A request came in: it earns `ratio` of a retry."""
        self.requests.append(now)
        self._trim(now)

    def try_spend(self, now: float) -> bool:
        """Take one retry (or hedge) if the budget has one left."""
        self._trim(now)
        allowed = self.min_per_s * self.window_s + self.ratio * len(self.requests)
        if len(self.spent) + 1 > allowed:
            return False
        self.spent.append(now)
        return True

    def _trim(self, now: float) -> None:
        horizon = now - self.window_s
        for times in (self.requests, self.spent):
            while times and times[0] <= horizon:
                times.popleft()


def backoff_s(retry: int, *, base_s: float, cap_s: float, rng: random.Random) -> float:
    """Seconds to wait before retry number `retry` (0 = the first retry): full jitter."""
    return rng.uniform(0.0, min(cap_s, base_s * 2 ** retry))
