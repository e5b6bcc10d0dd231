"""What an error says, in one line, without what SQLAlchemy appends to its messages: the statement
and its parameters — a restore's parameters are rows, i.e. users' messages, which must not reach
logs, events or alerts (STYLE: secrets and content never logged)."""

from sqlalchemy.exc import StatementError


def describe(error: BaseException) -> str:
    cause = error.orig if isinstance(error, StatementError) and error.orig is not None else error
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    return f"{type(cause).__name__}: {text}"[:500] if text else type(cause).__name__
