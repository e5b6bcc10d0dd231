"""Files in a snapshot: the active lifeline.yaml, and directories named in the config
(fine-tuning data and its job settings, eval sets, prompt libraries). Each file is its own
artifact, its SHA-256 recorded, so which data trained or evaluated which model stays traceable.

On restore a file is written where it was if nothing is there (or the same bytes are); a file
that differs is left alone and the snapshot's copy is written beside it as
`<name>.restored-<snapshot id>`, unless `force`, which replaces it (the old one kept as
`<name>.before-<snapshot id>`)."""

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .codec import sha256


@dataclass
class Placed:
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    beside: list[str] = field(default_factory=list)  # differed: the snapshot's copy is beside it
    replaced: list[str] = field(default_factory=list)


def walk(root: Path) -> Iterator[tuple[str, Path]]:
    """(relative path with '/', path) of every regular file, sorted; symlinks are not followed
    out of the directory (their targets are not ours to back up)."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file():
                continue
            yield path.relative_to(root).as_posix(), path


def place(path: Path, data: bytes, snapshot_id: str, *, force: bool, placed: Placed) -> None:
    label = str(path)
    if path.is_file():
        if sha256(path.read_bytes()) == sha256(data):
            placed.unchanged.append(label)
            return
        if not force:
            _write(path.with_name(f"{path.name}.restored-{snapshot_id}"), data)
            placed.beside.append(label)
            return
        path.replace(path.with_name(f"{path.name}.before-{snapshot_id}"))
        _write(path, data)
        placed.replaced.append(label)
        return
    _write(path, data)
    placed.written.append(label)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".restoring")
    tmp.write_bytes(data)
    tmp.replace(path)
