"""The one path every stored payload takes past the serializer: compress, encrypt, offload (and back).

Results, saved steps, stored failures and HTTP responses are all serialized to text by the same serializer, then
come here. Without a store's offload or encryption the engine uses `record.pack` and `record.unpack` directly and
never imports this module. The stored forms tell themselves apart by their first byte:

- text: the serialized text as is (small payloads);
- ``x`` (0x78, zlib's header): the text compressed;
- ``0x01`` + pointer JSON: the payload lives in S3 (`offload`);
- ``0x02`` + Encryption SDK message: the payload encrypted (`encryption`); its plaintext is one of the forms
  above as bytes, text marked with a leading ``0x00``.

Encryption comes before offload, so an offloaded object of an encrypted store is ciphertext too.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

from .errors import ResultUnreadableError
from .record import COMPRESS_ABOVE, MAX_PAYLOAD_BYTES, MAX_UNPACKED_BYTES, Payload, unpack

if TYPE_CHECKING:
    from .encryption import KmsEncryption
    from .offload import S3Offload

OFFLOADED = b"\x01"
ENCRYPTED = b"\x02"
TEXT = b"\x00"
ZLIB = b"x"


class Payloads:
    """A store's offload and encryption, applied to each payload it is given (either may be None)."""

    def __init__(self, offload: S3Offload | None, encryption: KmsEncryption | None) -> None:
        self.offload = offload
        self.encryption = encryption
        self._plain_up_to = (
            0 if encryption is not None else min(COMPRESS_ABOVE, offload.threshold_bytes if offload else 0)
        )
        """ASCII text up to this length is stored as it is, with no other work (the small results' path)."""

    def seal(self, text: str, *, operation: str, record_id: str, owner: str, slot: str) -> Payload | None:
        """The stored form of ``text``; None when it is too big: past `MAX_UNPACKED_BYTES`, or past the item limit
        with no offload. The object (if any) is
        written here, before the record refers to it. Raises `StoreUnavailableError` when S3 or KMS fail."""
        if len(text) <= self._plain_up_to and text.isascii():
            return text
        data = text.encode()
        if len(data) > MAX_UNPACKED_BYTES:  # however it is stored, it could not be read back
            return None
        payload: Payload = text if len(data) <= COMPRESS_ABOVE else zlib.compress(data, 6)
        if self.encryption is not None:
            payload = ENCRYPTED + self.encryption.encrypt(_as_bytes(payload), operation, record_id)
        size = len(payload.encode()) if isinstance(payload, str) else len(payload)
        if self.offload is not None and size > self.offload.threshold_bytes:
            return OFFLOADED + self.offload.put(record_id, owner, slot, _as_bytes(payload))
        return payload if size <= MAX_PAYLOAD_BYTES else None

    def open(self, payload: Payload, *, operation: str, record_id: str) -> str:
        """The text a stored payload holds: fetched, checked and decrypted as its form says."""
        if isinstance(payload, bytes) and payload[:1] == OFFLOADED:
            if self.offload is None:
                raise ResultUnreadableError(f"{record_id} holds an offloaded payload, and this store has no offload")
            payload = _from_bytes(self.offload.get(payload[1:], record_id), record_id)
        if isinstance(payload, bytes) and payload[:1] == ENCRYPTED:
            if self.encryption is None:
                raise ResultUnreadableError(f"{record_id} holds an encrypted payload, and this store has no encryption")
            payload = _from_bytes(self.encryption.decrypt(payload[1:], operation, record_id), record_id)
        return open_plain(payload, record_id)


def open_plain(payload: Payload, record_id: str) -> str:
    """The text of a payload that is neither offloaded nor encrypted; `ResultUnreadableError` for any other."""
    if isinstance(payload, bytes) and payload[:1] != ZLIB:
        raise ResultUnreadableError(
            f"{record_id} holds a payload this store cannot read: offloaded or encrypted (give the store the "
            "offload= and encryption= that wrote it), or of an unknown form"
        )
    return unpack(payload)


def _as_bytes(payload: Payload) -> bytes:
    return TEXT + payload.encode() if isinstance(payload, str) else payload


def _from_bytes(data: bytes, record_id: str) -> Payload:
    """The inverse of `_as_bytes`; only plain forms (and, inside an object, ciphertext) may come out of it."""
    if data[:1] == TEXT:
        if len(data) - 1 > MAX_UNPACKED_BYTES:  # `seal` never writes one: the same bound as a compressed payload's
            raise ResultUnreadableError(
                f"the payload of {record_id} is text past {MAX_UNPACKED_BYTES} bytes (MAX_UNPACKED_BYTES); "
                "it was not read"
            )
        try:
            return data[1:].decode()
        except UnicodeDecodeError as exc:
            raise ResultUnreadableError(f"the payload of {record_id} is not UTF-8 text") from exc
    if data[:1] in (ZLIB, ENCRYPTED):
        return data
    raise ResultUnreadableError(f"the payload of {record_id} has an unknown form")
