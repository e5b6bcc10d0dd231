"""What a router reserves before the call (services/router/admission.py estimate)."""

from schemas.completion import CompletionRequest
from services.router.admission import estimate
from services.router.logic import plan
from services.runtime.config.budgets import AdmissionConfig
from tests.fixtures.cost_guard import priced_config


def test_the_estimate_prices_the_first_member_with_max_tokens_or_the_default():
    config = priced_config()  # gpt-4o-mini at $100 in / $400 out per million tokens
    first = plan(config, "chat")[0]
    request = CompletionRequest(messages=[{"role": "user", "content": "x" * 400}], max_tokens=50)
    usd, tokens = estimate(request, first, AdmissionConfig())
    assert tokens == 100 + 4 + 50  # 400 chars / 4, the role's overhead, max_tokens
    assert usd == (104 * 100 + 50 * 400) / 1e6
    unbounded = request.model_copy(update={"max_tokens": None})
    assert estimate(unbounded, first, AdmissionConfig(default_output_tokens=512))[1] == 104 + 512
