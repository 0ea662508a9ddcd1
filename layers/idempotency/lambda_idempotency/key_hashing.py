"""Keys and scopes stored as keyed hashes instead of text (option ``hash_keys``; DESIGN.md, "Stored data").

A raw idempotency key can be a card number or an e-mail address, and an HTTP scope is the caller's identity; with
``hash_keys`` the record's ``key`` and ``scope`` attributes hold ``hmac-sha256:<hex>`` instead. The HMAC key is
the secret given (``hash_keys=b"..."``), or else the operation name. The record id stays a hash of the raw key, so
a duplicate finds its record and the CLI finds one from the raw key the operator types.

What it hides and what it does not: without a secret the text is gone, but whoever reads the table and can guess
a key (and scope) can confirm the guess, as the record id (SHA-256 of scope and key) already allowed. With a
secret, the record id and the fingerprint (a SHA-256 of the payload, as guessable as the key) are HMACs under the
same secret, so confirming a guess needs the secret too; the CLI reads it from ``LAMBDA_IDEMPOTENCY_KEY_SECRET``.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from .keys import record_id

PREFIX = "hmac-sha256:"
SECRET_ENV = "LAMBDA_IDEMPOTENCY_KEY_SECRET"


class KeyHasher:
    """The keyed hashes of one operation's keys and scopes, and its record ids."""

    def __init__(self, operation: str, secret: bytes | None = None) -> None:
        if secret is not None and (not isinstance(secret, bytes) or len(secret) < 16):
            raise ValueError("a key-hashing secret must be bytes, at least 16 bytes long")
        self.operation = operation
        self.secret = secret
        self._mac = hmac.new(secret if secret is not None else operation.encode(), digestmod=hashlib.sha256)

    def hide(self, kind: str, text: str) -> str:
        """What the record stores instead of ``text`` (``kind`` is "key" or "scope": equal texts differ)."""
        mac = self._mac.copy()  # the key's HMAC state, computed once: each hash costs only its message
        mac.update(f"{kind}\0{text}".encode())
        return PREFIX + mac.hexdigest()

    def record_id(self, scope: str | None, key: str) -> str:
        """The record id: as `keys.record_id`, or with a secret an HMAC of the same text under it."""
        if self.secret is None:
            return record_id(self.operation, scope, key)
        digest = hmac.new(self.secret, json.dumps([scope, key]).encode(), hashlib.sha256).hexdigest()
        return f"{self.operation}#{digest}"


def is_hidden(value: str | None) -> bool:
    return value is not None and value.startswith(PREFIX)
