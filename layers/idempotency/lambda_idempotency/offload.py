"""Results too big for a DynamoDB item, kept in S3 (DESIGN.md, "Results of any size").

A payload past the threshold is written to S3 before the record's completion, under a key made of the record id's
hash, the owner token and the slot (the result, or one step). The record keeps only a pointer: bucket, object key,
size and SHA-256 of the object. The completion is fenced by the owner token, so an object written by an execution
that lost its lease (a zombie) is never named by the record; and since the pointer holds the hash, an object that
was changed or replaced afterwards is refused on replay (`ResultUnreadableError`), never returned.

boto3's S3 client is made on first use, so a store configured with an offload costs a cold start nothing until a
big result comes.
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any

from .errors import ResultUnreadableError, StoreConfigurationError, StoreUnavailableError
from .record import MAX_UNPACKED_BYTES
from .service_errors import payload_service_error

DEFAULT_THRESHOLD_BYTES = 64 * 1024
"""Payloads (after compression and encryption) above this go to S3: a record holding a result and a few steps
stays well under DynamoDB's 400 KB item limit."""
MIN_THRESHOLD_BYTES = 1024
MAX_INLINE_BYTES = 350_000
"""The most a threshold may be: one payload must leave room in the item for the rest of the record."""
MAX_OBJECT_BYTES = MAX_UNPACKED_BYTES + 1024 * 1024
"""The largest object a replay reads: what `Payloads.seal` writes is at most `MAX_UNPACKED_BYTES`, compressed and
then encrypted (the Encryption SDK's framing adds under 1%); a pointer naming more is not fetched."""


class S3Offload:
    """Where big payloads go: ``DynamoDBStore(table, offload=S3Offload("my-bucket"))``.

    The bucket should expire objects with a lifecycle rule no shorter than the records' TTL (template.yaml's
    ``ResultsBucket`` does), and encrypt them at rest; objects of executions that lost their lease are left for
    that rule to remove.
    """

    def __init__(
        self,
        bucket: str,
        *,
        threshold_bytes: int = DEFAULT_THRESHOLD_BYTES,
        prefix: str = "idempotency/",
        client: Any = None,
        endpoint_url: str | None = None,
        region_name: str | None = None,
    ) -> None:
        if not isinstance(bucket, str) or not bucket:
            raise ValueError(f"bucket must be a non-empty bucket name, got {bucket!r}")
        if not MIN_THRESHOLD_BYTES <= threshold_bytes <= MAX_INLINE_BYTES:
            raise ValueError(f"threshold_bytes must be {MIN_THRESHOLD_BYTES}-{MAX_INLINE_BYTES}, got {threshold_bytes}")
        self.bucket = bucket
        self.threshold_bytes = threshold_bytes
        self.prefix = prefix
        self._client = client
        self._endpoint_url = endpoint_url
        self._region_name = region_name
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        """The S3 client, made on first use (standard retries, short connect timeout) unless one was given."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    import boto3
                    from botocore.config import Config

                    self._client = boto3.client(
                        "s3",
                        endpoint_url=self._endpoint_url,
                        region_name=self._region_name,
                        config=Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2),
                    )
        return self._client

    def object_key(self, record_id: str, owner: str, slot: str) -> str:
        """Derived from the record id and the owner token: executions never share an object."""
        record = hashlib.sha256(record_id.encode()).hexdigest()
        name = hashlib.sha256(slot.encode()).hexdigest()[:32]
        return f"{self.prefix}{record}/{owner}/{name}"

    def put(self, record_id: str, owner: str, slot: str, body: bytes) -> bytes:
        """Write ``body`` to S3; the pointer the record keeps (compact JSON). Raises `StoreUnavailableError`, or
        `StoreConfigurationError` for a bucket that is missing or denied."""
        from botocore.exceptions import BotoCoreError, ClientError

        key = self.object_key(record_id, owner, slot)
        digest = hashlib.sha256(body).hexdigest()
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/octet-stream")
        except (BotoCoreError, ClientError) as exc:
            raise _s3_error(exc, f"writing the offloaded payload of {record_id} to S3 (s3://{self.bucket})") from exc
        pointer = {"bucket": self.bucket, "key": key, "size": len(body), "sha256": digest}
        return json.dumps(pointer, separators=(",", ":")).encode()

    def get(self, pointer: bytes, record_id: str) -> bytes:
        """The object a pointer names, checked against its size and hash.

        A missing, changed or foreign object raises `ResultUnreadableError`; S3 not answering raises
        `StoreUnavailableError` (a retry may succeed), a bucket missing or denied `StoreConfigurationError`.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            where = json.loads(pointer)
            bucket, key, size, digest = where["bucket"], where["key"], int(where["size"]), str(where["sha256"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ResultUnreadableError(f"the offload pointer of {record_id} is malformed") from exc
        if not 0 <= size <= MAX_OBJECT_BYTES:
            raise ResultUnreadableError(
                f"the offloaded payload of {record_id} is said to take {size} bytes, past what a replay reads "
                f"(MAX_UNPACKED_BYTES and its framing, {MAX_OBJECT_BYTES}); it was not read"
            )
        if bucket != self.bucket or not isinstance(key, str) or not key.startswith(self.prefix):
            raise ResultUnreadableError(f"the payload of {record_id} points outside {self.bucket}/{self.prefix}")
        try:
            body: bytes = self.client.get_object(Bucket=bucket, Key=key)["Body"].read(size + 1)  # never more than said
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("NoSuchKey", "404", "NotFound"):
                raise ResultUnreadableError(f"the offloaded payload of {record_id} is gone from S3 ({key})") from exc
            raise _s3_error(exc, f"reading the offloaded payload of {record_id} from S3 (s3://{bucket})") from exc
        except BotoCoreError as exc:
            raise _s3_error(exc, f"reading the offloaded payload of {record_id} from S3 (s3://{bucket})") from exc
        if len(body) != size or hashlib.sha256(body).hexdigest() != digest:
            raise ResultUnreadableError(f"the offloaded payload of {record_id} does not match the record's hash")
        return body


def _s3_error(exc: Exception, what: str) -> StoreConfigurationError | StoreUnavailableError:
    """A missing or denied bucket is a misconfiguration (`StoreConfigurationError`, whatever ``fail_open`` says); any
    other failure of S3 an outage."""
    return payload_service_error(exc, what) or StoreUnavailableError(f"{what} failed: {exc}")
