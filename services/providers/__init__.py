"""Provider adapters (OpenAI, OpenAI-compatible, Azure OpenAI, Anthropic) and the error taxonomy.

Used by the router and the health monitor through the `Provider` port; `make_provider` builds one
from its `ProviderSpec`.
"""

from services.providers.anthropic import AnthropicProvider
from services.providers.base import ChatAnswer, ChatCall, Provider, ProviderError, ProviderKind, ProviderSpec
from services.providers.errors import classify_http_error, classify_transport_error
from services.providers.factory import make_provider
from services.providers.openai import OpenAIProvider

__all__ = [
    "AnthropicProvider",
    "ChatAnswer",
    "ChatCall",
    "OpenAIProvider",
    "Provider",
    "ProviderError",
    "ProviderKind",
    "ProviderSpec",
    "classify_http_error",
    "classify_transport_error",
    "make_provider",
]
