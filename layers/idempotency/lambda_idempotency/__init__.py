"""lambda-idempotency: make AWS Lambda functions safe to retry.

A decorator claims each idempotency key in DynamoDB with one conditional write, runs the function once, stores
its result and replays it to every retry. Names are loaded on first use, so ``import lambda_idempotency`` costs
little on a cold start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

if TYPE_CHECKING:
    from .codec import Serializer, TaggedJsonSerializer
    from .decorators import idempotent, idempotent_function
    from .encryption import KmsEncryption
    from .errors import (
        CachedFailureError,
        IdempotencyError,
        InProgressError,
        InputTooDeepError,
        InvalidBatchError,
        InvalidKeyError,
        InvalidStepError,
        InvalidWriteError,
        KeyReuseError,
        LeaseLostError,
        MissingKeyError,
        MissingScopeError,
        ModeError,
        NoActiveExecutionError,
        ResultNotStoredError,
        ResultUnreadableError,
        StoreConfigurationError,
        StoreUnavailableError,
        WriteConditionError,
    )
    from .execution import Execution, current, use_lambda_context
    from .observability import disable_metrics, enable_metrics
    from .offload import S3Offload
    from .stores.base import Store
    from .stores.dynamodb import DynamoDBStore, create_table
    from .stores.memory import MemoryStore

__all__ = [
    "CachedFailureError",
    "DynamoDBStore",
    "Execution",
    "IdempotencyError",
    "InProgressError",
    "InputTooDeepError",
    "InvalidBatchError",
    "InvalidKeyError",
    "InvalidStepError",
    "InvalidWriteError",
    "KeyReuseError",
    "KmsEncryption",
    "LeaseLostError",
    "MemoryStore",
    "MissingKeyError",
    "MissingScopeError",
    "ModeError",
    "NoActiveExecutionError",
    "ResultNotStoredError",
    "ResultUnreadableError",
    "S3Offload",
    "Serializer",
    "Store",
    "StoreConfigurationError",
    "StoreUnavailableError",
    "TaggedJsonSerializer",
    "WriteConditionError",
    "create_table",
    "current",
    "disable_metrics",
    "enable_metrics",
    "idempotent",
    "idempotent_function",
    "use_lambda_context",
]

_LAZY = {
    "CachedFailureError": "errors",
    "IdempotencyError": "errors",
    "InProgressError": "errors",
    "InputTooDeepError": "errors",
    "InvalidBatchError": "errors",
    "InvalidKeyError": "errors",
    "InvalidStepError": "errors",
    "InvalidWriteError": "errors",
    "KeyReuseError": "errors",
    "LeaseLostError": "errors",
    "MissingKeyError": "errors",
    "MissingScopeError": "errors",
    "ModeError": "errors",
    "NoActiveExecutionError": "errors",
    "ResultNotStoredError": "errors",
    "ResultUnreadableError": "errors",
    "StoreConfigurationError": "errors",
    "StoreUnavailableError": "errors",
    "WriteConditionError": "errors",
    "idempotent": "decorators",
    "idempotent_function": "decorators",
    "current": "execution",
    "use_lambda_context": "execution",
    "Execution": "execution",
    "enable_metrics": "observability",
    "disable_metrics": "observability",
    "Store": "stores.base",
    "DynamoDBStore": "stores.dynamodb",
    "create_table": "stores.dynamodb",
    "MemoryStore": "stores.memory",
    "Serializer": "codec",
    "TaggedJsonSerializer": "codec",
    "S3Offload": "offload",
    "KmsEncryption": "encryption",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lambda_idempotency' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
