"""The one place that turns a provider's configuration into its adapter."""

from collections.abc import Callable

from services.providers.anthropic_stream import AnthropicStreamingProvider
from services.providers.base import Provider, ProviderKind, ProviderSpec
from services.providers.openai_stream import OpenAIStreamingProvider

# Azure OpenAI is kind "openai" (or "openai_compatible") with an *.openai.azure.com base_url.
# The streaming subclasses add `stream` (services/providers/streaming.py) to the same adapters.
_ADAPTERS: dict[ProviderKind, Callable[[ProviderSpec], Provider]] = {
    "openai": OpenAIStreamingProvider,
    "openai_compatible": OpenAIStreamingProvider,
    "anthropic": AnthropicStreamingProvider,
}


def make_provider(spec: ProviderSpec) -> Provider:
    """The adapter for `spec.kind`. Nothing connects until the first call."""
    try:
        adapter = _ADAPTERS[spec.kind]
    except KeyError:
        known = ", ".join(sorted(_ADAPTERS))
        raise ValueError(f"provider {spec.name!r}: unknown kind {spec.kind!r} (known: {known})") from None
    return adapter(spec)
