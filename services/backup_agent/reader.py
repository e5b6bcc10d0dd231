"""Reading a snapshot back: every artifact checked (size and SHA-256 of what is stored, then
decrypted, decompressed, and its rows counted and summed) before anything is used.

`check_all()` is the first half of both verify and restore: nothing is written anywhere until
every artifact has passed it. For a remote target the checked bytes are kept in a spool
directory, so the second pass does not download them again (and is checked again all the same).
"""

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .codec import ArtifactError, KeyProblem, Sealer, decompress, fingerprint, lines, sha256
from .manifest import MANIFEST, SEAL, Artifact, Manifest, RowsChecksum, seal_of
from .targets import Target


class SnapshotNotFound(Exception):
    pass


async def resolve(target: Target, snapshot_id: str) -> str:
    """`latest`, or an id that must be there."""
    known = await target.snapshots()
    if snapshot_id == "latest":
        if not known:
            raise SnapshotNotFound(f"no snapshot on {target.description}")
        return known[-1]
    if snapshot_id not in known:
        hint = f" (newest: {', '.join(known[-3:])})" if known else " (there is none)"
        raise SnapshotNotFound(f"no snapshot {snapshot_id!r} on {target.description}{hint}")
    return snapshot_id


class Snapshot:
    def __init__(self, target: Target, snapshot_id: str, *, key: bytes | None,
                 key_env: str = "LIFELINE_BACKUP_KEY", spool: Path | None = None) -> None:
        self.target = target
        self.id = snapshot_id
        self.key = key
        self.key_env = key_env
        self.spool = spool
        self.manifest: Manifest | None = None
        self._sealer: Sealer | None = None

    async def load(self) -> Manifest:
        raw = await self.target.get(self.id, MANIFEST)
        try:
            manifest = Manifest.model_validate_json(raw)
        except ValidationError as e:
            raise ArtifactError(MANIFEST, f"not a valid manifest ({e.errors()[0]['msg']}): "
                                          "altered or rotted") from None
        if manifest.id != self.id:
            raise ArtifactError(MANIFEST, f"belongs to snapshot {manifest.id}, not {self.id}")
        enc = manifest.encryption
        if enc and self.key is None:
            raise KeyProblem(f"snapshot {self.id} is encrypted ({enc.algorithm}); set "
                             f"{enc.key_env} to the key it was made with (fingerprint "
                             f"{enc.key_fingerprint})")
        # With another key the seal cannot be checked; the first artifact then says "wrong key".
        if not enc or fingerprint(self.key or b"") == enc.key_fingerprint:
            seal = (await self.target.get(self.id, SEAL)).decode(errors="replace").strip()
            if seal != seal_of(raw, self.key if enc else None):
                raise ArtifactError(MANIFEST, f"does not match its seal ({SEAL}): altered or rotted")
        self.manifest = manifest
        self._sealer = Sealer(self.key if manifest.encryption else None, self.id)
        return manifest

    def _wrong_key(self, error: ArtifactError) -> ArtifactError:
        enc = self.manifest.encryption if self.manifest else None
        if enc is None or self.key is None or "decrypted" not in error.problem:
            return error
        given = fingerprint(self.key)
        why = ("the key is right, so the artifact was altered" if given == enc.key_fingerprint
               else f"the key in {self.key_env} has fingerprint {given}; the snapshot was made "
                    f"with {enc.key_fingerprint}: wrong key")
        return ArtifactError(error.artifact, f"cannot be decrypted: {why}")

    async def stored(self, artifact: Artifact) -> bytes:
        """The artifact as stored, its size and SHA-256 checked against the manifest."""
        spooled = self.spool / artifact.name if self.spool else None
        if spooled is not None and spooled.is_file():
            data = spooled.read_bytes()
        else:
            data = await self.target.get(self.id, artifact.name)
        if len(data) != artifact.bytes:
            raise ArtifactError(artifact.name, f"is {len(data)} bytes; the manifest says "
                                               f"{artifact.bytes} (truncated or replaced)")
        if sha256(data) != artifact.sha256:
            raise ArtifactError(artifact.name, "SHA-256 does not match the manifest (the file "
                                               "was altered or has rotted)")
        if spooled is not None and not spooled.is_file():
            spooled.parent.mkdir(parents=True, exist_ok=True)
            spooled.write_bytes(data)
        return data

    async def plain(self, artifact: Artifact) -> bytes:
        """Checked, decrypted and decompressed; rows counted and summed (or the file hashed)."""
        if self._sealer is None:
            await self.load()
        assert self._sealer is not None
        data = await self.stored(artifact)
        try:
            data = self._sealer.open(artifact.name, data)
        except ArtifactError as e:
            raise self._wrong_key(e) from None
        data = decompress(data, artifact.name)
        if artifact.rows is None:
            if artifact.content_sha256 and sha256(data) != artifact.content_sha256:
                raise ArtifactError(artifact.name, "content does not match its recorded SHA-256")
            return data
        checksum = RowsChecksum()
        for line in lines(data):
            checksum.add(line)
        if checksum.rows != artifact.rows:
            raise ArtifactError(artifact.name, f"holds {checksum.rows} rows; the manifest says "
                                               f"{artifact.rows}")
        if artifact.content_sha256 and checksum.hexdigest() != artifact.content_sha256:
            raise ArtifactError(artifact.name, "rows do not match their recorded checksum")
        return data

    async def check_all(self) -> Manifest:
        manifest = self.manifest or await self.load()
        for artifact in manifest.artifacts:
            await self.plain(artifact)
        return manifest

    async def records(self, artifact: Artifact) -> list[dict[str, Any]]:
        data = await self.plain(artifact)
        return [json.loads(line) for line in lines(data)]

    def parts(self, table: str, source: str = "main") -> list[Artifact]:
        assert self.manifest is not None
        return sorted((a for a in self.manifest.artifacts
                       if a.kind == "sql" and a.table == table and a.source == source),
                      key=lambda a: a.part or 0)

    async def rows_of(self, table: str, source: str = "main") -> AsyncIterator[list[dict[str, Any]]]:
        for artifact in self.parts(table, source):
            yield await self.records(artifact)
