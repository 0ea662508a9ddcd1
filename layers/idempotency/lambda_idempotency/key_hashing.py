"""Keys and scopes stored as keyed hashes instead of text (option ``hash_keys``; DESIGN.md, "Stored data").

A raw idempotency key can be a card number or an e-mail address, and an HTTP scope is the caller's identity; with
``hash_keys`` the record's ``key`` and ``scope`` attributes hold ``blake2b:<hex>`` instead: keyed hashes under the
secret given (``hash_keys=b"..."``), or else under the operation name. The record id is still computed from the raw
key, so a duplicate finds its record and the CLI finds one from the raw key the operator types.

What it hides and what it does not: without a secret the text is gone, but whoever reads the table and can guess
a key (and scope) can confirm the guess, as the record id (SHA-256 of scope and key) already allowed. With a
secret, the record id and the fingerprint (a SHA-256 of the payload, as guessable as the key) are keyed hashes
under the same secret, so confirming a guess needs the secret too; the CLI reads it from
``LAMBDA_IDEMPOTENCY_KEY_SECRET``.
"""

from __future__ import annotations

import hashlib
import json

from .keys import record_id

PREFIX = "blake2b:"
SECRET_ENV = "LAMBDA_IDEMPOTENCY_KEY_SECRET"


class KeyHasher:
    """The keyed hashes of one operation's keys and scopes, and its record ids.

    BLAKE2b in its keyed mode (a MAC by design, RFC 7693), not HMAC-SHA256: the same guarantee at a third of the CPU
    (about 1 µs a hash here, from a key state computed once), and the HTTP adapter hashes twice per claim. Its key
    is the SHA-256 of the secret or of the operation name (BLAKE2b takes keys up to 64 bytes; names can be longer).
    """

    def __init__(self, operation: str, secret: bytes | None = None) -> None:
        if secret is not None and (not isinstance(secret, bytes) or len(secret) < 16):
            raise ValueError("a key-hashing secret must be bytes, at least 16 bytes long")
        self.operation = operation
        self.secret = secret
        key = hashlib.sha256(secret if secret is not None else operation.encode()).digest()
        self._state = hashlib.blake2b(key=key, digest_size=32)

    def hide(self, kind: str, text: str) -> str:
        """What the record stores instead of ``text`` (``kind`` is "key", "scope" or "fingerprint": equal texts of
        two kinds differ)."""
        mac = self._state.copy()
        mac.update(f"{kind}\0{text}".encode())
        return PREFIX + mac.hexdigest()

    def record_id(self, scope: str | None, key: str) -> str:
        """The record id: as `keys.record_id`, or with a secret a keyed hash of the same text under it."""
        if self.secret is None:
            return record_id(self.operation, scope, key)
        return f"{self.operation}#{self.hide('record', json.dumps([scope, key]))[len(PREFIX) :]}"


def is_hidden(value: str | None) -> bool:
    return value is not None and value.startswith(PREFIX)
