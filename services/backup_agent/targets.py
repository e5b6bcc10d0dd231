"""Where snapshots live: a local directory (default) or S3-compatible object storage (aioboto3).

A snapshot is complete once its manifest is there: the directory target writes into
`<id>.partial/` and renames it when the manifest is in; the S3 target writes the manifest last.
Listing shows complete snapshots only; incomplete ones are left for retention to delete.
"""

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any, Protocol, Self

from botocore.exceptions import BotoCoreError, ClientError

from .codec import ArtifactError
from .manifest import MANIFEST

PARTIAL = ".partial"
# What a target's storage can fail with (a full disk, S3 unreachable or refusing).
TARGET_ERRORS = (OSError, BotoCoreError, ClientError)


class Target(Protocol):
    description: str  # "dir:/var/backups" or "s3://bucket/prefix"

    async def __aenter__(self) -> Self: ...
    async def __aexit__(self, *exc: object) -> None: ...
    async def put(self, snapshot_id: str, name: str, data: bytes) -> None: ...
    async def get(self, snapshot_id: str, name: str) -> bytes: ...
    async def commit(self, snapshot_id: str) -> None: ...
    async def snapshots(self) -> list[str]: ...
    async def incomplete(self) -> list[str]: ...
    async def delete(self, snapshot_id: str) -> None: ...


def _check_name(name: str) -> None:
    # Artifact names come from table and file names: never let one climb out of its snapshot.
    parts = name.split("/")
    if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"bad artifact name {name!r}")


class DirectoryTarget:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.description = f"dir:{self.root}"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def _dir(self, snapshot_id: str) -> Path:
        done = self.root / snapshot_id
        return done if done.is_dir() else self.root / (snapshot_id + PARTIAL)

    async def put(self, snapshot_id: str, name: str, data: bytes) -> None:
        _check_name(name)
        await asyncio.to_thread(self._write, self._dir(snapshot_id) / name, data)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)

    async def get(self, snapshot_id: str, name: str) -> bytes:
        _check_name(name)
        path = self.root / snapshot_id / name
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise ArtifactError(name, f"missing from {self.description}/{snapshot_id}") from None

    async def commit(self, snapshot_id: str) -> None:
        partial = self.root / (snapshot_id + PARTIAL)
        await asyncio.to_thread(partial.rename, self.root / snapshot_id)

    async def snapshots(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and not p.name.endswith(PARTIAL) and (p / MANIFEST).is_file())

    async def incomplete(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name.removesuffix(PARTIAL) for p in self.root.iterdir()
                      if p.is_dir() and p.name.endswith(PARTIAL))

    async def delete(self, snapshot_id: str) -> None:
        for path in (self.root / snapshot_id, self.root / (snapshot_id + PARTIAL)):
            if path.is_dir():
                await asyncio.to_thread(shutil.rmtree, path)


class S3Target:
    """Objects `<prefix><snapshot id>/<artifact>` in one bucket. One client for the target's
    lifetime (`async with`)."""

    def __init__(self, *, bucket: str, prefix: str = "lifeline/", endpoint_url: str | None = None,
                 region: str | None = None, access_key: str | None = None,
                 secret_key: str | None = None, addressing_style: str = "auto") -> None:
        self.bucket = bucket
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        self.description = f"s3://{bucket}/{self.prefix}"
        self._client_args: dict[str, Any] = {
            "endpoint_url": endpoint_url, "region_name": region or "us-east-1",
            "aws_access_key_id": access_key, "aws_secret_access_key": secret_key}
        self._addressing_style = addressing_style
        self._client: Any = None
        self._context: Any = None

    async def __aenter__(self) -> Self:
        import aioboto3  # imported here: a directory target needs none of it
        from aiobotocore.config import AioConfig

        config = AioConfig(s3={"addressing_style": self._addressing_style},
                           retries={"max_attempts": 5, "mode": "standard"})
        self._context = aioboto3.Session().client(
            "s3", config=config, **{k: v for k, v in self._client_args.items() if v is not None})
        self._client = await self._context.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._context is not None:
            await self._context.__aexit__(None, None, None)
            self._context = self._client = None

    @property
    def s3(self) -> Any:
        if self._client is None:
            raise RuntimeError("the S3 target is not open (use `async with`)")
        return self._client

    def _key(self, snapshot_id: str, name: str) -> str:
        return f"{self.prefix}{snapshot_id}/{name}"

    async def put(self, snapshot_id: str, name: str, data: bytes) -> None:
        _check_name(name)
        await self.s3.put_object(Bucket=self.bucket, Key=self._key(snapshot_id, name), Body=data)

    async def get(self, snapshot_id: str, name: str) -> bytes:
        _check_name(name)
        try:
            response = await self.s3.get_object(Bucket=self.bucket, Key=self._key(snapshot_id, name))
        except self.s3.exceptions.NoSuchKey:
            raise ArtifactError(name, f"missing from {self.description}{snapshot_id}/") from None
        async with response["Body"] as body:
            return await body.read()

    async def commit(self, snapshot_id: str) -> None:
        return None  # the manifest, written last, is what makes it complete

    async def _ids(self) -> tuple[set[str], set[str]]:
        every, complete = set(), set()
        paginator = self.s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for obj in page.get("Contents", []):
                snapshot_id, _, name = obj["Key"][len(self.prefix):].partition("/")
                every.add(snapshot_id)
                if name == MANIFEST:
                    complete.add(snapshot_id)
        return every, complete

    async def snapshots(self) -> list[str]:
        _, complete = await self._ids()
        return sorted(complete)

    async def incomplete(self) -> list[str]:
        every, complete = await self._ids()
        return sorted(every - complete)

    async def delete(self, snapshot_id: str) -> None:
        paginator = self.s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{self.prefix}{snapshot_id}/"):
            keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if keys:  # at most 1,000 a page, as delete_objects allows
                await self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})
