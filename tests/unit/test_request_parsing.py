from schemas.completion import CompletionRequest, ErrorKind
from services.router.logic import parse_request, request_id_of


def test_valid_request_gets_defaults_and_an_id():
    r = parse_request(b'{"messages": [{"role": "user", "content": "hi"}]}')
    assert isinstance(r, CompletionRequest)
    assert (r.route, r.priority, r.allow_queue) == ("chat", "interactive", False)
    assert len(r.request_id) == 32


def test_not_json_says_so():
    r = parse_request(b"{nope")
    assert r.kind == ErrorKind.INVALID_REQUEST
    assert r.message.startswith("request is not valid JSON")


def test_missing_messages_names_the_field():
    r = parse_request(b'{"route": "chat"}')
    assert r.kind == ErrorKind.INVALID_REQUEST
    assert "messages: Field required" in r.message


def test_wrong_types_name_each_field():
    r = parse_request(b'{"messages": [{"role": "robot", "content": 3}], "max_tokens": -1}')
    assert "messages.0.role" in r.message and "messages.0.content" in r.message
    assert "max_tokens" in r.message


def test_unknown_field_is_rejected_by_name():
    r = parse_request(b'{"messages": [{"role": "user", "content": "x"}], "modle": "gpt"}')
    assert "modle: Extra inputs are not permitted" in r.message


def test_a_json_array_is_not_a_request():
    assert parse_request(b"[1, 2]").kind == ErrorKind.INVALID_REQUEST


def test_request_id_survives_rejection_when_present():
    assert request_id_of(b'{"request_id": "abc"}') == "abc"
    assert request_id_of(b"garbage") is None


def test_subject_patterns_match_as_nats_does():
    from schemas.subjects import matches
    assert matches("deadletter.llm.queue.batch", "deadletter.llm.queue.>")
    assert not matches("deadletter.llm.queue", "deadletter.llm.queue.>")
    assert matches("llm.result.r1", "llm.result.*") and not matches("llm.result.r1.x", "llm.result.*")
    assert matches("provider.down", "provider.down") and not matches("provider.up", "provider.down")
