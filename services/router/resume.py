"""Resuming a stream on another member from the partial answer the caller already has. Pure.

Anthropic models carry on from a final assistant message (a "prefill": the reply continues its
text). OpenAI-format models have no prefill, so they get the partial answer as an assistant turn
and an explicit instruction to continue it. Either way the caller never sees a restart: the router
forwards only what the new member adds, and smooths the seam's whitespace.
"""

from schemas.completion import Usage
from services.providers.base import ProviderKind

CONTINUE_INSTRUCTION = (
    "Continue your previous answer exactly where it stopped, mid-sentence if need be. "
    "Do not repeat anything already written and add no preamble."
)
CHARS_PER_TOKEN = 4  # the usual rule of thumb; only for billing a call the vendor never summed up


def resume_messages(messages: list[dict[str, str]], partial: str,
                    kind: ProviderKind) -> list[dict[str, str]]:
    """The conversation that asks `kind`'s model to continue `partial`."""
    if kind == "anthropic":
        # The API refuses a prefill that ends in whitespace; the seam puts the space back.
        prefill = partial.rstrip()
        return [*messages, {"role": "assistant", "content": prefill}] if prefill else list(messages)
    return [*messages, {"role": "assistant", "content": partial},
            {"role": "user", "content": CONTINUE_INSTRUCTION}]


def seam(sent: str, first: str) -> str:
    """The first text of a resumed member, joined to what was sent: one space, never two."""
    if sent and sent[-1].isspace() and first[:1].isspace():
        return first.lstrip()
    return first


def remaining_max_tokens(max_tokens: int | None, produced: int) -> int | None:
    """A resumed member may only finish the answer's token allowance, not start a new one."""
    return None if max_tokens is None else max(1, max_tokens - produced)


def billed_for_a_cut_call(messages: list[dict[str, str]], *, input_tokens: int,
                          deltas: int) -> Usage:
    """What a member that died mid-answer will bill: its prompt and the tokens it produced.

    The vendor never sent its usage summary, so: input from what it said at the start (Anthropic
    does) or estimated from the prompt's length; output ~ one token per delta, as vendors stream.
    Nothing is billed for a call that produced no text.
    """
    if deltas == 0:
        return Usage()
    estimated = sum(len(m["content"]) for m in messages) // CHARS_PER_TOKEN + 1
    return Usage(input_tokens=input_tokens or estimated, output_tokens=deltas)
