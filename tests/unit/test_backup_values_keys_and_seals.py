"""How values, keys and artifacts are encoded: pure, no I/O."""

import base64
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import JSON, Column, Integer, LargeBinary, MetaData, Numeric, Table, Text, Uuid
from sqlalchemy import Date as SaDate
from sqlalchemy import DateTime as SaDateTime
from sqlalchemy import Time as SaTime
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import NullType

from services.backup_agent import columns
from services.backup_agent.codec import (
    ArtifactError, Compressor, KeyProblem, Sealer, compress, decompress, lines, parse_key,
)
from services.backup_agent.manifest import RowsChecksum, seal_of


def _table(*cols: Column) -> Table:
    return Table("t", MetaData(), *cols)


def test_values_round_trip_through_json() -> None:
    table = _table(Column("at", SaDateTime(timezone=True)), Column("naive", SaDateTime()),
                   Column("day", SaDate()), Column("clock", SaTime()), Column("blob", LargeBinary()),
                   Column("price", Numeric(12, 4)), Column("ref", Uuid()), Column("doc", JSON()),
                   Column("n", Integer()))
    at = datetime(2026, 1, 31, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    row = (at, datetime(2026, 1, 31, 10, 0), date(2026, 1, 31), time(3, 4, 5), b"\x00\xff",
           Decimal("1234.5600"), uuid.UUID(int=7), {"k": [1, 2.5, None]}, 42)
    encoded = columns.encode_row(row, columns.encoders(table))
    assert encoded["at"] == encoded["naive"] == "2026-01-31T10:00:00+00:00"
    assert encoded["blob"] == base64.b64encode(b"\x00\xff").decode() and encoded["price"] == "1234.5600"
    pg = columns.decode_row(encoded, columns.decoders(table, "postgresql"))
    assert pg["at"] == at and pg["at"].tzinfo is not None  # the same instant
    assert pg["naive"] == datetime(2026, 1, 31, 10, 0)  # a column without a zone gets naive UTC
    assert (pg["day"], pg["clock"], pg["blob"], pg["price"], pg["ref"], pg["doc"], pg["n"]) == row[2:]
    sqlite = columns.decode_row(encoded, columns.decoders(table, "sqlite"))
    assert sqlite["at"] == datetime(2026, 1, 31, 10, 0)  # SQLite keeps naive UTC


def test_unknown_types_travel_as_text() -> None:
    table = _table(Column("id", Integer()), Column("embedding", NullType()),
                   Column("tags", postgresql.ARRAY(Integer())), Column("took", postgresql.INTERVAL()))
    described = columns.prepare(table, {"embedding": "vector(3)", "tags": "integer[]",
                                        "took": "interval"}, "postgresql")
    assert [c.generic for c in described] == ["integer", "text", "text", "text"]
    assert isinstance(table.c.embedding.type, columns.AsText)
    assert table.c.embedding.type.get_col_spec() == "vector(3)"
    # SQLite gives unknown declared types NUMERIC affinity: their values travel as stored.
    lite = _table(Column("v", Numeric()), Column("t", Text()))
    assert [c.generic for c in columns.prepare(lite, {}, "sqlite")] == ["text", "string"]


def test_row_checksum_ignores_order() -> None:
    a, b = RowsChecksum(), RowsChecksum()
    for line in (b"1", b"2", b"3"):
        a.add(line)
    for line in (b"3", b"1", b"2"):
        b.add(line)
    assert a.hexdigest() == b.hexdigest() and a.rows == 3
    b.add(b"3")
    assert a.hexdigest() != b.hexdigest()


def test_keys_must_be_32_bytes_of_base64() -> None:
    assert parse_key(None, env="K") is None and parse_key("", env="K") is None
    assert parse_key(base64.b64encode(b"x" * 32).decode(), env="K") == b"x" * 32
    with pytest.raises(KeyProblem, match="K is not base64"):
        parse_key("not base64!", env="K")
    with pytest.raises(KeyProblem, match="holds 16 bytes"):
        parse_key(base64.b64encode(b"x" * 16).decode(), env="K")


def test_sealed_artifacts_open_only_with_their_key_snapshot_and_name() -> None:
    sealed = Sealer(b"k" * 32, "snap-1").seal("sql/turns.0000.jsonl.gz.enc", b"rows")
    assert Sealer(b"k" * 32, "snap-1").open("sql/turns.0000.jsonl.gz.enc", sealed) == b"rows"
    for key, snapshot, name in [(b"o" * 32, "snap-1", "sql/turns.0000.jsonl.gz.enc"),
                                (b"k" * 32, "snap-2", "sql/turns.0000.jsonl.gz.enc"),
                                (b"k" * 32, "snap-1", "sql/other.0000.jsonl.gz.enc")]:
        with pytest.raises(ArtifactError, match=name.replace(".", r"\.")):
            Sealer(key, snapshot).open(name, sealed)
    assert Sealer(None, "s").seal("a", b"plain") == b"plain"
    assert seal_of(b"{}", None).startswith("sha256:") and seal_of(b"{}", b"k" * 32) != seal_of(b"{}", b"o" * 32)


def test_compression_round_trip_and_damage() -> None:
    c = Compressor(6)
    for n in range(1000):
        c.add(b'{"n":%d}\n' % n)
    data = c.finish()
    assert list(lines(decompress(data, "x")))[-1] == b'{"n":999}'
    assert decompress(compress(b"", 6), "x") == b""
    with pytest.raises(ArtifactError, match="artifact part.gz: gzip stream is truncated"):
        decompress(data[:-8], "part.gz")
    with pytest.raises(ArtifactError, match="not valid gzip"):
        decompress(b"nonsense", "x")


def test_utc_encoding_is_stable() -> None:
    aware = datetime(2026, 1, 1, tzinfo=UTC)
    plan = columns.encoders(_table(Column("at", SaDateTime(timezone=True))))
    assert columns.encode_row((aware,), plan) == columns.encode_row((aware.replace(tzinfo=None),), plan)
