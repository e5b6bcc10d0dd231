"""Bad input said plainly: which field, what is wrong (pydantic's messages, without the URLs)."""

from typing import TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def problems(error: ValidationError, root: str = "body") -> str:
    """`messages.0.role: Input should be 'system', 'user' or 'assistant'; ...`"""
    return "; ".join(f"{'.'.join(str(p) for p in err['loc']) or root}: {err['msg']}"
                     for err in error.errors(include_url=False))


def parse(model: type[M], raw: bytes) -> M | str:
    """The message as `model`, or what is wrong with it (`invalid <Model>: ...`)."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as e:
        return f"invalid {model.__name__}: {problems(e)}"
