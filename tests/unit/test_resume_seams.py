"""Resuming a stream from a partial answer (router/resume.py), and the simulator's model of a
vendor carrying on from one (simulator/logic.py)."""

from services.router import resume
from services.simulator.logic import ChatRequest, answer, continuation, continued
from services.simulator.stream_faults import planned
from services.simulator import anthropic_format, openai_format
from services.simulator.logic import FaultSettings

Q = [{"role": "user", "content": "What is your refund policy?"}]


def test_anthropic_gets_a_prefill_without_trailing_whitespace():
    assert resume.resume_messages(Q, "Refunds are ", "anthropic") == [
        *Q, {"role": "assistant", "content": "Refunds are"}]
    assert resume.resume_messages(Q, "   ", "anthropic") == Q  # nothing to prefill


def test_openai_formats_get_the_partial_answer_and_an_instruction():
    messages = resume.resume_messages(Q, "Refunds are ", "openai_compatible")
    assert messages[-2] == {"role": "assistant", "content": "Refunds are "}
    assert messages[-1]["role"] == "user" and messages[-1]["content"].startswith("Continue")


def test_the_seam_has_one_space_never_two_and_never_none_removed():
    assert resume.seam("Refunds are ", " accepted") == "accepted"
    assert resume.seam("Refunds are", " accepted") == " accepted"
    assert resume.seam("Refunds are ", "accepted") == "accepted"
    assert resume.seam("", " x") == " x"


def test_a_resumed_member_only_gets_what_is_left_of_max_tokens():
    assert resume.remaining_max_tokens(None, 10) is None
    assert resume.remaining_max_tokens(100, 30) == 70
    assert resume.remaining_max_tokens(10, 30) == 1


def test_a_cut_call_is_billed_for_what_it_produced():
    assert resume.billed_for_a_cut_call(Q, input_tokens=0, deltas=0).output_tokens == 0
    usage = resume.billed_for_a_cut_call(Q, input_tokens=0, deltas=3)
    assert usage.output_tokens == 3 and usage.input_tokens == len(Q[0]["content"]) // 4 + 1
    assert resume.billed_for_a_cut_call(Q, input_tokens=42, deltas=3).input_tokens == 42


def test_the_simulator_recognises_both_continuation_shapes():
    prefill = [*Q, {"role": "assistant", "content": "[x/y] You asked:"}]
    assert continued(prefill) == (Q, "[x/y] You asked:")
    ask_to_continue = [*Q, {"role": "assistant", "content": "part"}, {"role": "user", "content": "Continue it"}]
    assert continued(ask_to_continue) == (Q, "part")
    assert continued([*Q, {"role": "assistant", "content": "a"}, {"role": "user", "content": "Why?"}]) is None


def test_the_simulator_carries_on_from_anyones_words():
    assert continuation("[b/m] You asked: X. Done.", "[a/n] You asked:") == " X. Done."
    assert continuation("[b/m] Something else.", "[a/n] You asked:") == "[b/m] Something else."
    reply = answer("anthropic", ChatRequest(model="m", messages=[
        *Q, {"role": "assistant", "content": "[openai/g] You asked: What is"}]))
    assert reply.content == " your refund policy. This is a simulated answer."


def test_stream_faults_never_send_the_end_marker_of_a_dying_stream():
    frames = [b"role", b"a", b"b", b"c", b"finish", b"[DONE]"]
    settings = FaultSettings(cut_after=2)
    assert planned(frames, 1, "cut", settings, openai_format) == ([b"role", b"a", b"b"], True)
    assert planned(frames, 1, "stall", FaultSettings(cut_after=99), openai_format)[0] == frames[:-1]
    sent, dies = planned(frames, 1, "stream_error", settings, openai_format)
    assert not dies and sent[:3] == [b"role", b"a", b"b"] and b"error" in sent[3]
    sent, _ = planned(frames, 1, "malformed_chunk", settings, anthropic_format)
    assert sent[3] == anthropic_format.malformed_frame() and sent[4:] == frames[3:]
