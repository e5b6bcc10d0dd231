"""What one request's walk produced: the result, every attempt with its bill, refused keys."""

from dataclasses import dataclass, field

from schemas.completion import Attempt, CompletionResult, ErrorKind, Usage
from services.providers.base import ProviderError


@dataclass(frozen=True)
class KeyRefusal:
    """A 401/403 that took a provider out of rotation: published once as provider.key_refused."""

    provider: str
    model: str
    message: str
    status_code: int | None


@dataclass
class Outcome:
    result: CompletionResult
    attempts: list[Attempt] = field(default_factory=list)
    status_codes: list[int | None] = field(default_factory=list)
    usages: list[Usage] = field(default_factory=list)  # what each attempt was billed
    costs: list[float] = field(default_factory=list)
    key_refusals: list[KeyRefusal] = field(default_factory=list)

    def add(self, attempt: Attempt, status_code: int | None, usage: Usage, cost: float) -> None:
        self.attempts.append(attempt)
        self.status_codes.append(status_code)
        self.usages.append(usage)
        self.costs.append(cost)


def callers_fault(e: ProviderError) -> bool:
    """A request every vendor would refuse (400, 422): answer it, do not try the next member.

    A 404 is also `bad_request` in the taxonomy, but it means this vendor lacks the model or the
    deployment; another member of the chain may well have it.
    """
    return e.kind is ErrorKind.BAD_REQUEST and e.status_code != 404
