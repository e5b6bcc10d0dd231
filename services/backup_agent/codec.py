"""Artifacts as stored: gzip (stdlib zlib), then optionally AES-256-GCM (the `cryptography`
package). Each artifact has its own random 96-bit nonce, stored before the ciphertext; the
associated data binds it to its snapshot and name, so an artifact moved to another snapshot or
renamed does not decrypt either."""

import base64
import binascii
import hashlib
import os
import zlib
from collections.abc import Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12  # GCM's standard nonce; random per artifact (NIST SP 800-38D, 8.2.2)
_GZIP = 31  # zlib wbits for a gzip container


class ArtifactError(Exception):
    """An artifact that cannot be used; the message names it."""

    def __init__(self, artifact: str, problem: str) -> None:
        super().__init__(f"artifact {artifact}: {problem}")
        self.artifact = artifact
        self.problem = problem


class KeyProblem(Exception):
    """The encryption key is missing or malformed."""


def parse_key(text: str | None, *, env: str) -> bytes | None:
    """A key given as base64 of 32 bytes; None when not set."""
    if not text:
        return None
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyProblem(f"{env} is not base64 (make one with: openssl rand -base64 32)") from None
    if len(key) != 32:
        raise KeyProblem(f"{env} holds {len(key)} bytes; AES-256 needs 32 (openssl rand -base64 32)")
    return key


def fingerprint(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:16]


class Compressor:
    """Lines in, gzip out, a line at a time (a big table is never held uncompressed)."""

    def __init__(self, level: int) -> None:
        self._z = zlib.compressobj(level, zlib.DEFLATED, _GZIP)
        self._out: list[bytes] = []

    def add(self, data: bytes) -> None:
        if chunk := self._z.compress(data):
            self._out.append(chunk)

    def finish(self) -> bytes:
        self._out.append(self._z.flush())
        return b"".join(self._out)


def compress(data: bytes, level: int) -> bytes:
    c = Compressor(level)
    c.add(data)
    return c.finish()


def decompress(data: bytes, name: str) -> bytes:
    try:
        z = zlib.decompressobj(_GZIP)
        out = z.decompress(data) + z.flush()
    except zlib.error as e:
        raise ArtifactError(name, f"not valid gzip ({e})") from None
    if not z.eof or z.unused_data:
        raise ArtifactError(name, "gzip stream is truncated or has trailing data")
    return out


def lines(data: bytes) -> Iterator[bytes]:
    """The JSON lines of a decoded artifact (each without its newline)."""
    start = 0
    while start < len(data):
        end = data.index(b"\n", start)
        yield data[start:end]
        start = end + 1


class Sealer:
    """Encrypts (or passes through when there is no key) one snapshot's artifacts."""

    def __init__(self, key: bytes | None, snapshot_id: str) -> None:
        self._aead = AESGCM(key) if key else None
        self.snapshot_id = snapshot_id

    @property
    def encrypted(self) -> bool:
        return self._aead is not None

    def _aad(self, name: str) -> bytes:
        return f"lifeline-backup/{self.snapshot_id}/{name}".encode()

    def seal(self, name: str, data: bytes) -> bytes:
        if self._aead is None:
            return data
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data, self._aad(name))

    def open(self, name: str, data: bytes) -> bytes:
        if self._aead is None:
            return data
        if len(data) < NONCE_BYTES + 16:
            raise ArtifactError(name, "too short to be an encrypted artifact")
        try:
            return self._aead.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], self._aad(name))
        except InvalidTag:
            raise ArtifactError(name, "cannot be decrypted with this key (wrong key, or the "
                                      "artifact was altered)") from None


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
