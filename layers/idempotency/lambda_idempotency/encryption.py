"""Client-side encryption of stored payloads with the AWS Encryption SDK and a KMS key (DESIGN.md, "Stored data").

Results, saved steps and stored failures are encrypted before they reach DynamoDB (or S3), so whoever can read the
table or the bucket sees ciphertext. Each payload is its own Encryption SDK message: a fresh data key from KMS
(one GenerateDataKey per write, one Decrypt per replay), wrapped by the configured key. The encryption context is
the operation and the record id; a replay checks both, so a ciphertext copied into another record is refused
(`ResultUnreadableError`), never decrypted into the wrong answer.

Why the Encryption SDK itself and not Powertools' data masking: data masking encrypts fields of a JSON document
into base64 text (a third bigger) and loads Powertools; here the payload is already one opaque byte string, and
the SDK takes it as is, with the encryption context we choose. The SDK's KMS master key provider is used rather
than the keyring API, which needs the Material Providers Library (a large generated runtime) at every cold start
for the same KMS wrapping. The algorithm suite is AES-256-GCM with key commitment and no ECDSA signature: the
writers and readers are the same functions, with the same key policy, so a signature (milliseconds per payload)
would guard against no one.

Only `KmsEncryption`'s first use imports the SDK (extra ``[encryption]``): a store without encryption never does.
"""

from __future__ import annotations

import threading
from typing import Any

from .errors import ResultUnreadableError, StoreUnavailableError
from .service_errors import payload_service_error

CONTEXT_OPERATION = "lambda-idempotency:operation"
CONTEXT_RECORD = "lambda-idempotency:record-id"


class KmsEncryption:
    """Encrypt every stored payload under a KMS key: ``DynamoDBStore(table, encryption=KmsEncryption(key_arn))``.

    ``key_arn`` must be the key's ARN (the SDK's strict mode decrypts only with keys named by ARN).
    ``botocore_session`` is the session the SDK makes its KMS clients from (default: a new one); a handler that hears
    KMS's refusals (`_heard`) is registered on it, once.
    """

    def __init__(self, key_arn: str, *, botocore_session: Any = None) -> None:
        if not isinstance(key_arn, str) or not key_arn.startswith("arn:"):
            raise ValueError(f"key_arn must be a KMS key ARN (arn:aws:kms:...), got {key_arn!r}")
        self.key_arn = key_arn
        self._botocore_session = botocore_session
        self._sdk: tuple[Any, Any, Any] | None = None
        self._lock = threading.Lock()

    def _loaded(self) -> tuple[Any, Any, Any]:
        """The SDK client, the key provider and the algorithm, made on first use."""
        if self._sdk is None:
            with self._lock:
                if self._sdk is None:
                    try:
                        import aws_encryption_sdk
                        from aws_encryption_sdk.identifiers import Algorithm, CommitmentPolicy
                    except ImportError as exc:
                        raise ImportError(
                            "KmsEncryption needs the AWS Encryption SDK: pip install 'lambda-idempotency[encryption]'"
                        ) from exc
                    import botocore.session

                    session = self._botocore_session or botocore.session.Session()
                    # Before the provider: it makes its KMS client now, with the session's handlers as they are then.
                    session.register("after-call.kms", _heard, unique_id=HEARD_ID)  # once per session, however shared
                    options: dict[str, Any] = {"key_ids": [self.key_arn], "botocore_session": session}
                    client = aws_encryption_sdk.EncryptionSDKClient(
                        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT,
                        max_encrypted_data_keys=1,
                    )
                    provider = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(**options)
                    self._sdk = (client, provider, Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY)
        return self._sdk

    def encrypt(self, plaintext: bytes, operation: str, record_id: str) -> bytes:
        """An Encryption SDK message of ``plaintext``, bound to the operation and record. KMS failing raises
        `StoreUnavailableError`, or `StoreConfigurationError` for a key that is missing, disabled or denied: nothing
        is stored in clear instead."""
        client, provider, algorithm = self._loaded()
        try:
            ciphertext, _ = client.encrypt(
                source=plaintext,
                key_provider=provider,
                encryption_context=_context(operation, record_id),
                algorithm=algorithm,
            )
        except Exception as exc:
            what = f"encrypting the payload of {record_id} with KMS key {self.key_arn}"
            raise payload_service_error(exc, what) or StoreUnavailableError(f"{what} failed: {exc}") from exc
        result: bytes = ciphertext
        return result

    def decrypt(self, ciphertext: bytes, operation: str, record_id: str) -> bytes:
        """The plaintext of a message written for this operation and record; else `ResultUnreadableError`.
        KMS out of reach or refusing for a while (throttled) is `StoreUnavailableError`, a key missing, disabled or
        denied `StoreConfigurationError`."""
        client, provider, _ = self._loaded()
        from aws_encryption_sdk.exceptions import AWSEncryptionSDKClientError
        from botocore.exceptions import BotoCoreError

        _refusals.last = None
        try:
            plaintext, header = client.decrypt(source=ciphertext, key_provider=provider)
        except BotoCoreError as exc:  # KMS not reached: a retry may work
            what = f"KMS could not be reached to decrypt {record_id}"
            raise payload_service_error(exc, what) or StoreUnavailableError(f"{what}: {exc}") from exc
        except AWSEncryptionSDKClientError as exc:  # KMS's answer, if it refused, was heard on the way (`_heard`)
            what = f"decrypting the payload of {record_id} with KMS key {self.key_arn}"
            error = payload_service_error(_refusals.last or exc, what)
            if error is not None:
                raise error from exc
            raise ResultUnreadableError(f"the payload of {record_id} cannot be decrypted: {exc}") from exc
        expected = _context(operation, record_id)
        found = {name: header.encryption_context.get(name) for name in expected}
        if found != expected:
            raise ResultUnreadableError(f"the payload of {record_id} was encrypted for another record or operation")
        result: bytes = plaintext
        return result


_refusals = threading.local()
"""KMS's last refusal on this thread (`_heard`): the SDK replaces it by its own error, without a chain."""
HEARD_ID = "lambda-idempotency-kms-refusals"


def _heard(http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
    """botocore's ``after-call`` of each KMS call the SDK makes: a refusal is kept for `KmsEncryption.decrypt`, which
    tells a key denied or disabled (a misconfiguration) and throttling (an outage) from a ciphertext KMS will not read.
    Registered once per session (``unique_id``), whatever number of stores share it."""
    if http_response.status_code >= 300:
        from botocore.exceptions import ClientError

        _refusals.last = ClientError(parsed, model.name)


def _context(operation: str, record_id: str) -> dict[str, str]:
    return {CONTEXT_OPERATION: operation, CONTEXT_RECORD: record_id}
