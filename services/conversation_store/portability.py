"""Export and import: every turn as JSON Lines (records.py), the way to carry the history to a
new system when everything else is gone. Used by `lifeline export` and `lifeline import`."""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError

from .records import Checksum, TurnRecord, to_line
from .store import RowError, TurnStore

IMPORT_BATCH = 500  # turns per transaction


class PortabilityError(Exception):
    """A file that cannot be imported, or a store that must not be imported into."""


@dataclass
class Exported:
    turns: int
    sha256: str


@dataclass
class Imported:
    read: int  # turns in the file
    stored: int  # written now
    skipped: int  # already in the store (same request id)
    purged: int  # of users purged in this store after the turn happened: left out
    sha256: str  # of the file's turns, comparable with the export's
    refused: list[str] = field(default_factory=list)  # "line N: reason", rows the database refused


async def export_turns(store: TurnStore, out: TextIO, *, since: datetime | None = None,
                       user_id: str | None = None) -> Exported:
    summed = Checksum()
    async for record in store.records(since=since, user_id=user_id):
        line = to_line(record)
        out.write(line + "\n")
        summed.add(line)
    return Exported(turns=summed.count, sha256=summed.hexdigest())


def read_file(path: Path) -> Iterator[tuple[int, TurnRecord]]:
    """(line number, turn) for every non-blank line; raises PortabilityError naming the first
    bad lines, their fields and what is wrong with them."""
    problems = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = TurnRecord.model_validate_json(line)
            except ValidationError as e:
                errors = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'line'}: {err['msg']}"
                                   for err in e.errors()[:3])
                problems.append(f"{path}:{number}: {errors}")
                if len(problems) == 10:
                    break
                continue
            if not problems:
                yield number, record
    if problems:
        raise PortabilityError("not a turn export (JSON Lines from `lifeline export`):\n"
                               + "\n".join(problems))


def check_file(path: Path) -> tuple[int, str]:
    """Reads the whole file once before anything is written: (turns, checksum)."""
    summed = Checksum()
    for _, record in read_file(path):
        summed.add(to_line(record))
    return summed.count, summed.hexdigest()


async def import_turns(store: TurnStore, path: Path, *, force: bool = False) -> Imported:
    """Into an empty store (or any, with force): idempotent on request id either way."""
    count, sha256 = check_file(path)
    existing = await store.count()
    if existing and not force:
        raise PortabilityError(
            f"the store already holds {existing} turns; import fills an empty store. "
            "Use --force to add to it (turns already there are skipped by request id).")
    result = Imported(read=count, stored=0, skipped=0, purged=0, sha256=sha256)
    batch: list[tuple[int, TurnRecord]] = []
    for item in read_file(path):
        batch.append(item)
        if len(batch) == IMPORT_BATCH:
            await _write(store, batch, result)
            batch = []
    if batch:
        await _write(store, batch, result)
    return result


async def _write(store: TurnStore, batch: list[tuple[int, TurnRecord]], result: Imported) -> None:
    try:
        added = await store.add([r for _, r in batch])
    except RowError as e:
        if len(batch) == 1:
            number, record = batch[0]
            result.refused.append(f"line {number} ({record.request_id}): {e}"[:300])
            return
        for one in batch:  # find the refused rows; store the others
            await _write(store, [one], result)
        return
    result.stored += len(added.stored)
    result.purged += len(added.purged)
    result.skipped += len(batch) - len(added.stored) - len(added.purged)
