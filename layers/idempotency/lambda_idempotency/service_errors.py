"""Which AWS errors mean a misconfiguration rather than an outage: the codes, and how the payloads' services are read.

A missing or denied resource, rejected or missing credentials and an unknown region fail every retry the same way:
they are `StoreConfigurationError`, which ``fail_open`` never turns into an unguarded run. The DynamoDB table is
diagnosed by `stores.diagnosis` (which names the table, the region and the fix); the S3 bucket of offloaded payloads
and the KMS key that encrypts them by `payload_service_error` here.
"""

from __future__ import annotations

from botocore import exceptions as boto

from .errors import StoreConfigurationError, StoreUnavailableError

ACCESS_DENIED = frozenset({"AccessDeniedException", "AccessDenied"})
REJECTED_CREDENTIALS = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "IncompleteSignatureException",
        "MissingAuthenticationTokenException",
        "MissingAuthenticationToken",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "ExpiredTokenException",
        "ExpiredToken",
    }
)
NO_CREDENTIALS = (
    boto.NoCredentialsError,
    boto.PartialCredentialsError,
    boto.CredentialRetrievalError,
    boto.TokenRetrievalError,
    boto.SSOError,
    boto.ProfileNotFound,
)
NO_REGION = (boto.NoRegionError, boto.InvalidRegionError, boto.UnknownEndpointError, boto.EndpointResolutionError)
PAYLOAD_MISCONFIGURED = frozenset(
    {
        *ACCESS_DENIED,
        *REJECTED_CREDENTIALS,
        "InvalidAccessKeyId",  # S3's rejected credentials
        "NoSuchBucket",
        "InvalidBucketName",
        "AllAccessDisabled",
        "PermanentRedirect",  # the bucket is in another region
        "AuthorizationHeaderMalformed",
        "NotFoundException",  # KMS: no such key
        "DisabledException",
        "KMSInvalidStateException",  # the key is pending deletion, or pending import
        "InvalidKeyUsageException",
    }
)
"""What S3 and KMS answer for a bucket or key that is missing, disabled or denied to the function: every retry fails the
same way until someone fixes it."""
PAYLOAD_UNREADABLE = frozenset({"InvalidCiphertextException", "IncorrectKeyException"})
"""What KMS answers for a ciphertext it will never decrypt: the payload is unreadable, not the service unavailable."""


def payload_service_error(exc: BaseException, what: str) -> StoreConfigurationError | StoreUnavailableError | None:
    """What a failed S3 (offload) or KMS (encryption) call for a payload means, read anywhere in ``exc``'s chain (the
    Encryption SDK raises its own errors from KMS's): `StoreConfigurationError` for a bucket or key that is missing,
    disabled or denied, or for no credentials or region (``fail_open`` never runs through it);
    `StoreUnavailableError` for any other answer or failure of the service (a retry may work); None when the service
    said the ciphertext is unreadable, or was not called at all (the payload itself is at fault)."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, boto.ClientError):
            error = cause.response.get("Error", {})
            code, message = str(error.get("Code", "")), str(error.get("Message", ""))
            if code in PAYLOAD_MISCONFIGURED:
                return StoreConfigurationError(
                    f"{what} failed for a reason a retry cannot fix ({code}: {message}); check that it exists, is "
                    "enabled and in the function's region, and that the function's role may use it"
                )
            return None if code in PAYLOAD_UNREADABLE else StoreUnavailableError(f"{what} failed ({code}: {message})")
        if isinstance(cause, NO_CREDENTIALS + NO_REGION):
            return StoreConfigurationError(f"{what} failed: no usable credentials or region ({cause})")
        if isinstance(cause, boto.BotoCoreError):
            return StoreUnavailableError(f"{what} failed: {cause}")
        cause = cause.__cause__ or cause.__context__
    return None
