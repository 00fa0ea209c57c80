"""Password and token hashing for accounts (:mod:`voicebox.users`).

scrypt (``hashlib.scrypt``: standard library, memory-hard) with a random 16-byte salt per
password and its parameters stored beside the hash, so they can be raised later without
invalidating old hashes. At most :data:`KDF_SLOTS` scrypt runs at once: each takes 32 MiB, and a
flood of wrong passwords must not exhaust memory. Tokens are high-entropy, so a fast SHA-256 is
the right hash for them (see :mod:`voicebox.users`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

#: scrypt cost: N=2**15, r=8 (32 MiB, ~0.1 s a check on one core).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
#: Most memory a stored hash may make scrypt use (a doctored file cannot ask for more).
SCRYPT_MAXMEM = 256 * 1024 * 1024
KDF_SLOTS = 4
_kdf_slots = threading.BoundedSemaphore(KDF_SLOTS)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    with _kdf_slots:
        secret = password.encode("utf-8", "surrogatepass")
        return hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, maxmem=SCRYPT_MAXMEM, dklen=32)


def token_digest(token: str) -> str:
    """SHA-256 (hex) of a token: what the users file keeps instead of the token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class PasswordHash:
    """An scrypt hash with its salt and parameters."""

    salt: bytes = field(repr=False)
    digest: bytes = field(repr=False)
    n: int = SCRYPT_N
    r: int = SCRYPT_R
    p: int = SCRYPT_P

    @classmethod
    def of(cls, password: str) -> PasswordHash:
        salt = secrets.token_bytes(16)
        return cls(salt, _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P))

    def matches(self, password: str) -> bool:
        return hmac.compare_digest(_scrypt(password, self.salt, self.n, self.r, self.p), self.digest)

    def to_json(self) -> dict[str, Any]:
        salt, digest = (base64.b64encode(b).decode("ascii") for b in (self.salt, self.digest))
        return {"kdf": "scrypt", "n": self.n, "r": self.r, "p": self.p, "salt": salt, "hash": digest}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PasswordHash:
        if data.get("kdf") != "scrypt":
            raise ValueError(f"unknown password scheme {data.get('kdf')!r}")
        n, r, p = (int(data[k]) for k in ("n", "r", "p"))
        if n < 2 or n & (n - 1) or r < 1 or p < 1 or 128 * n * r * p > SCRYPT_MAXMEM // 2:
            raise ValueError("scrypt parameters out of range")
        # not base64: binascii.Error, a ValueError, which the loader reports as a damaged file
        salt, digest = (base64.b64decode(data[k], validate=True) for k in ("salt", "hash"))
        return cls(salt, digest, n, r, p)
