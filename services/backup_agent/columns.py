"""How a column's values travel: from a reflected column to a JSON value and back.

Tables are reflected, not imported from the services (new tables and columns are covered without
a code change here). Each column gets a *generic* kind from its reflected type; values of the
kinds we know are written as plain JSON (times as ISO 8601 UTC, bytes as base64). Anything else
— a pgvector `vector`, `point`, arrays, intervals, types SQLAlchemy does not know — is read and
written as the database's own text form (`CAST(col AS TEXT)`, and back with
`CAST(CAST(:v AS TEXT) AS <type>)`), which every PostgreSQL type has and which restores exactly.

The same encoding makes the checksum of a table's rows comparable between a source and a
restore, also across dialects (a PostgreSQL snapshot checked in a SQLite scratch database).
"""

import base64
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import Column as SaColumn
from sqlalchemy import Table, Text, cast, text, types
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import UserDefinedType

from .manifest import Column

# Checked in order: Float is a Numeric, JSONB a JSON, Text a String.
_KINDS: tuple[tuple[type, str], ...] = (
    (types.Boolean, "boolean"), (types.Integer, "integer"), (types.Float, "float"),
    (types.Numeric, "numeric"), (types.DateTime, "datetime"), (types.Date, "date"),
    (types.Time, "time"), (types.JSON, "json"), (types.LargeBinary, "binary"),
    (types.Uuid, "uuid"), (types.String, "string"),
)


def generic(type_: types.TypeEngine[Any], dialect: str = "postgresql") -> str:
    if dialect == "sqlite" and isinstance(type_, types.Numeric) and not isinstance(type_, types.Float):
        # SQLite gives every unknown declared type (VECTOR(3), MONEY) NUMERIC affinity, and a
        # NUMERIC column may hold text: its values travel as they are, as text.
        return "text"
    for cls, kind in _KINDS:
        if isinstance(type_, cls) and not isinstance(type_, types.ARRAY):
            return kind
    return "text"


class AsText(UserDefinedType[str]):
    """A PostgreSQL column read and written through its text form (see the module's doc)."""

    cache_ok = True

    def __init__(self, declared: str) -> None:
        self.declared = declared

    def get_col_spec(self, **kw: Any) -> str:
        return self.declared

    def column_expression(self, colexpr: Any) -> Any:
        return cast(colexpr, Text)

    def bind_expression(self, bindvalue: Any) -> Any:
        # The inner cast makes PostgreSQL take the parameter as text (else it would expect the
        # column's type and the driver would need a codec for it).
        return cast(cast(bindvalue, Text), self)


class Declared(UserDefinedType[Any]):
    """A column created exactly as the source declared it (same dialect)."""

    cache_ok = True

    def __init__(self, declared: str) -> None:
        self.declared = declared

    def get_col_spec(self, **kw: Any) -> str:
        return self.declared


# Numeric as text: a decimal's digits survive exactly (SQLite would keep a float).
_PORTABLE: dict[str, Callable[[], types.TypeEngine[Any]]] = {
    "boolean": types.Boolean, "integer": types.BigInteger, "float": types.Float,
    "numeric": types.Text, "datetime": lambda: types.DateTime(timezone=True),
    "date": types.Date, "time": types.Time, "json": types.JSON, "binary": types.LargeBinary,
    "uuid": lambda: types.String(36), "string": types.Text, "text": types.Text,
}


def creatable(column: Column, *, same_dialect: bool) -> types.TypeEngine[Any]:
    """The type to create a missing table's column with: as declared on the same dialect, else
    the nearest portable type (unknown kinds as text)."""
    return Declared(column.type) if same_dialect else _PORTABLE[column.generic]()


async def declared_types(conn: AsyncConnection, table: str, schema: str | None) -> dict[str, str]:
    """Each column's type as the database itself names it (also types SQLAlchemy cannot reflect)."""
    if conn.dialect.name == "postgresql":
        rows = await conn.execute(text(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "WHERE a.attrelid = CAST(:rel AS regclass) AND a.attnum > 0 AND NOT a.attisdropped"),
            {"rel": f'"{schema}"."{table}"' if schema else f'"{table}"'})
        return {name: type_ for name, type_ in rows}
    quoted = table.replace('"', '""')
    prefix = f'"{schema}".' if schema else ""
    rows = await conn.exec_driver_sql(f'PRAGMA {prefix}table_info("{quoted}")')
    return {row[1]: row[2] or "" for row in rows}


def prepare(table: Table, declared: dict[str, str], dialect: str) -> list[Column]:
    """Describes the table's columns, and makes its text-kind columns on PostgreSQL travel as text."""
    described = []
    for col in table.columns:
        kind = generic(col.type, dialect)
        if kind == "text":
            col.type = AsText(declared.get(col.name) or "text") if dialect == "postgresql" else Text()
        described.append(Column(name=col.name, type=declared.get(col.name, ""), generic=kind,
                                nullable=bool(col.nullable), primary_key=col.primary_key))
    return described


# --- values -----------------------------------------------------------------------------------

def _utc_iso(v: datetime) -> str:
    return (v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)).isoformat()


def _text(v: Any) -> str:
    return v if isinstance(v, str) else str(v)


_ENCODE: dict[str, Callable[[Any], Any] | None] = {
    "boolean": bool, "integer": int, "float": float, "numeric": str, "string": None,
    "datetime": _utc_iso, "date": date.isoformat, "time": time.isoformat, "json": None,
    "binary": lambda v: base64.b64encode(bytes(v)).decode(), "uuid": str, "text": _text,
}


def encoders(table: Table) -> list[tuple[str, Callable[[Any], Any] | None]]:
    """(name, encode or None for as-is), per column: rows become JSON-able dicts."""
    out = []
    for col in table.columns:
        kind = "text" if isinstance(col.type, AsText) else generic(col.type)
        out.append((col.name, _ENCODE[kind]))
    return out


def decoders(table: Table, dialect: str) -> dict[str, Callable[[Any], Any] | None]:
    """Per column of the *target* table: JSON value -> what its driver takes. A JSON column's
    None is written as SQL NULL (an export cannot tell it from JSON null; NULL is the usual)."""
    for col in table.columns:
        if isinstance(col.type, types.JSON) and not col.type.none_as_null:
            col.type = _null_as_null(col.type)
    return {col.name: _decoder(col.type, dialect) for col in table.columns}


def _null_as_null(type_: types.JSON) -> types.JSON:
    copy = type_.copy()
    copy.none_as_null = True
    return copy


def _decoder(type_: types.TypeEngine[Any], dialect: str) -> Callable[[Any], Any] | None:
    if isinstance(type_, AsText):
        return _text
    kind = generic(type_, dialect)
    if kind == "datetime":
        aware = dialect == "postgresql" and getattr(type_, "timezone", False)
        return _aware if aware else _naive_utc
    if kind == "date":
        return date.fromisoformat
    if kind == "time":
        return time.fromisoformat
    if kind == "binary":
        return base64.b64decode
    if kind == "numeric":
        return Decimal if getattr(type_, "asdecimal", True) else float
    if kind == "uuid":
        return uuid.UUID if getattr(type_, "as_uuid", True) else str
    if kind == "text":
        return _text
    return None


def _aware(v: str) -> datetime:
    at = datetime.fromisoformat(v)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _naive_utc(v: str) -> datetime:
    return _aware(v).astimezone(UTC).replace(tzinfo=None)


def encode_row(row: Any, plan: list[tuple[str, Callable[[Any], Any] | None]]) -> dict[str, Any]:
    return {name: (v if fn is None or v is None else fn(v)) for (name, fn), v in zip(plan, row)}


def decode_row(row: dict[str, Any], plan: dict[str, Callable[[Any], Any] | None]) -> dict[str, Any]:
    return {name: (v if v is None or (fn := plan.get(name)) is None else fn(v))
            for name, v in row.items()}


def key_column(table: Table) -> list[SaColumn[Any]]:
    """What to order an export by: the primary key, else every column (a stable order)."""
    return list(table.primary_key.columns) or list(table.columns)
