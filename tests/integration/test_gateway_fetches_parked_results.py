"""GET /v1/lifeline/results/{ticket}: a parked request's answer, read from llm.result.<id> in the
LLM_RESULTS stream (where the queue tier puts it), in the caller's wire format."""

from schemas import subjects
from schemas.completion import CompletionResult, ResultError, Usage


async def park_result(nc, result: CompletionResult) -> None:
    await nc.jetstream().publish(subjects.llm_result(result.request_id), result.model_dump_json().encode())


async def test_a_parked_answer_is_fetched_by_its_ticket(mesh_parts, nc, http):
    gw = await mesh_parts()
    async with http.get(f"{gw.url}/v1/lifeline/results/abc123") as r:
        assert r.status == 404
        body = await r.json()
        assert body["error"]["code"] == "result_not_ready" and r.headers["Retry-After"] == "1"
    await park_result(nc, CompletionResult(
        request_id="abc123", status="ok", content="Answered later.", tier="degraded",
        provider="anthropic", model="claude-haiku-4-5", fallback_depth=1,
        usage=Usage(input_tokens=9, output_tokens=3)))
    async with http.get(f"{gw.url}/v1/lifeline/results/abc123?model=chat") as r:
        assert r.status == 200
        body = await r.json()
        assert body["choices"][0]["message"]["content"] == "Answered later."
        assert body["id"] == "chatcmpl-abc123" and body["usage"]["completion_tokens"] == 3
        assert (r.headers["x-lifeline-tier"], r.headers["x-lifeline-provider"]) == ("degraded", "anthropic")
    async with http.get(f"{gw.url}/v1/lifeline/results/abc123?format=anthropic") as r:
        assert (await r.json())["content"][0]["text"] == "Answered later."


async def test_an_expired_result_is_an_error_and_a_bad_ticket_a_400(mesh_parts, nc, http):
    gw = await mesh_parts()
    await park_result(nc, CompletionResult(request_id="late-1", status="error", error=ResultError(
        kind="expired", message="deadline passed before a provider came back")))
    async with http.get(f"{gw.url}/v1/lifeline/results/late-1") as r:
        assert r.status == 504
        assert "deadline passed" in (await r.json())["error"]["message"]
    async with http.get(f"{gw.url}/v1/lifeline/results/a.b") as r:
        assert r.status == 400 and "is not a ticket" in (await r.json())["error"]["message"]
