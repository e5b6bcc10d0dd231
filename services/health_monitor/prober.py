"""Active probes and canaries against the vendors, through the provider adapters (the I/O side).

A probe is cheap and fair: the vendor's models list where it has one (free), else a completion
capped at a few tokens, where any well-formed answer - short, cut by the cap, even empty because
a reasoning model spent its cap thinking - counts as answered. Spend is priced from lifeline.yaml.
"""

import time
from collections.abc import Callable

from schemas.completion import Usage
from schemas.events import HealthProbe
from services.providers.base import ChatCall, Provider, ProviderError
from services.runtime.config import LifelineConfig
from services.runtime.config.health import CanaryCheck

from . import canary


class Prober:
    def __init__(self, config: LifelineConfig, providers: dict[str, Provider], *, source: str,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.config = config
        self.health = config.health
        self.providers = providers
        self.source = source
        self.clock = clock

    def method(self, provider: str) -> str:
        chosen = self.health.for_provider(provider).probe
        return "models" if chosen == "auto" else chosen

    def canary_model(self, provider: str) -> str:
        return (self.health.for_provider(provider).canary_model
                or next(iter(self.config.providers[provider].models)))

    async def probe(self, provider: str) -> list[HealthProbe]:
        """One probe round: the models list once, or a capped completion per model."""
        if self.method(provider) == "models":
            return [await self._models(provider)]
        settings = self.health.probe
        return [await self._completion(provider, model, settings.prompt, settings.max_tokens)
                for model in self.config.providers[provider].models]

    async def _models(self, provider: str) -> HealthProbe:
        timeout = self.health.probe.timeout_s
        started = self.clock()
        try:
            listed = await self.providers[provider].list_models(timeout=timeout)
        except ProviderError as e:
            return self._failed(provider, None, "models", started, e)
        missing = [m for m in self.config.providers[provider].models if m not in listed]
        # A model missing from the list is evidence, not a failure: lists are often filtered
        # (Azure deployments, gateways), and the call itself answered.
        return HealthProbe(source=self.source, provider=provider, kind="models", outcome="ok",
                           latency_ms=self._ms(started),
                           failures=[f"not listed: {m}" for m in missing])

    async def _completion(self, provider: str, model: str, prompt: str, max_tokens: int,
                          ) -> HealthProbe:
        started = self.clock()
        call = ChatCall(model=model, messages=[{"role": "user", "content": prompt}],
                        max_tokens=max_tokens)
        try:
            answer = await self.providers[provider].complete(call, timeout=self.health.probe.timeout_s)
        except ProviderError as e:
            return self._failed(provider, model, "completion", started, e)
        usage = Usage(input_tokens=answer.input_tokens, output_tokens=answer.output_tokens)
        return HealthProbe(source=self.source, provider=provider, model=model, kind="completion",
                           outcome="ok", latency_ms=self._ms(started), usage=usage,
                           cost_usd=self.cost(provider, model, usage))

    async def canary(self, provider: str) -> HealthProbe:
        """Every golden prompt, one after the other; `passed` of `checked` answered right.

        A call that fails is not a wrong answer: it counts as a failed probe, not against quality.
        """
        model = self.canary_model(provider)
        settings = self.health.canary
        started = self.clock()
        usage = Usage()
        passed = checked = 0
        failures: list[str] = []
        error: ProviderError | None = None
        for spec in settings.checks:
            try:
                answer = await self.providers[provider].complete(
                    _ask(model, spec, settings.max_tokens), timeout=self.health.probe.timeout_s)
            except ProviderError as e:
                error = e
                failures.append(f"{spec.name}: {e.kind}: {e.message}")
                continue
            usage = Usage(input_tokens=usage.input_tokens + answer.input_tokens,
                          output_tokens=usage.output_tokens + answer.output_tokens)
            checked += 1
            wrong = canary.check(spec, answer.content)
            if wrong is None:
                passed += 1
            else:
                failures.append(wrong)
        outcome = error.kind if error is not None and checked == 0 else "ok"
        return HealthProbe(source=self.source, provider=provider, model=model, kind="canary",
                           outcome=outcome, latency_ms=self._ms(started),
                           error=None if error is None else f"{error.kind}: {error.message}",
                           usage=usage, cost_usd=self.cost(provider, model, usage),
                           passed=passed, checked=checked, failures=failures)

    def cost(self, provider: str, model: str, usage: Usage) -> float:
        prices = self.config.providers[provider].models.get(model)
        if prices is None:
            return 0.0
        return (usage.input_tokens * prices.input_per_mtok
                + usage.output_tokens * prices.output_per_mtok) / 1_000_000

    def _failed(self, provider: str, model: str | None, kind: str, started: float,
                e: ProviderError) -> HealthProbe:
        return HealthProbe(source=self.source, provider=provider, model=model, kind=kind,  # type: ignore[arg-type]
                           outcome=e.kind, latency_ms=self._ms(started),
                           status_code=e.status_code, error=f"{e.kind}: {e.message}")

    def _ms(self, started: float) -> float:
        return round((self.clock() - started) * 1000, 3)


def _ask(model: str, spec: CanaryCheck, max_tokens: int) -> ChatCall:
    # temperature 0: the golden answer should not depend on the sampler's luck.
    return ChatCall(model=model, messages=[{"role": "user", "content": spec.prompt}],
                    max_tokens=max_tokens, temperature=0.0)
