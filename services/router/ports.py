"""What the engine asks of the world besides providers: the seams where other issues plug in.

Each has a do-nothing default here, so the engine works alone; app.py wires the real ones.
- LowerTiers: tiers 3 and 4, when no model answered (cache, FAQ, queue, maintenance; issue 4).
- Admission: budgets and limits, checked before any provider is called (issue 6).
- History: a session's earlier turns, carried to whichever provider answers (issue 7).
"""

from typing import Protocol

from schemas.completion import CompletionRequest, CompletionResult, Message, ResultError

from .logic import Member


class LowerTiers(Protocol):
    async def answer(self, request: CompletionRequest, failed: CompletionResult) -> CompletionResult | None:
        """An answer from a lower tier for a request the chain could not answer, or None."""
        ...

    async def remember(self, request: CompletionRequest, result: CompletionResult) -> None:
        """A model's good answer, for the cache."""
        ...


class Reservation(Protocol):
    # Set when the cost guard admits the request on the route's downgrade_chain only (a team,
    # user or key budget with action `downgrade` is spent): why.
    downgrade: str | None

    async def settle(self, cost_usd: float) -> None:
        """The request is done and cost this much (0 when nothing was billed)."""
        ...


class Admission(Protocol):
    async def admit(self, request: CompletionRequest, members: list[Member]) -> Reservation | ResultError:
        """Reserve the request's estimated cost and a slot in its limits, or say which is spent."""
        ...


class History(Protocol):
    async def earlier_turns(self, session_id: str, *, limit: int | None = None) -> list[Message]:
        """The session's earlier messages, oldest first (user and assistant turns), from at most
        the newest `limit` turns. Never raises and never blocks long: [] when unavailable."""
        ...


class NoLowerTiers:
    async def answer(self, request: CompletionRequest, failed: CompletionResult) -> CompletionResult | None:
        return None

    async def remember(self, request: CompletionRequest, result: CompletionResult) -> None:
        return None


class _Nothing:
    downgrade = None

    async def settle(self, cost_usd: float) -> None:
        return None


class Unlimited:
    async def admit(self, request: CompletionRequest, members: list[Member]) -> Reservation | ResultError:
        return _Nothing()


class NoHistory:
    async def earlier_turns(self, session_id: str, *, limit: int | None = None) -> list[Message]:
        return []
