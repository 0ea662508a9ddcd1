"""One ``TransactWriteItems``: the function's writes and the record's action, all or nothing, and what DynamoDB's
answer means.

The store builds the record's action and its fencing condition (`DynamoDBStore.commit`, `insert_finished`); this
module sends it with the writes and reads the answer: applied; the record refused (the item that refused it, as
`Refused`); writes refused by their own conditions (`WritesRefused`); a write DynamoDB finds invalid
(`InvalidWriteError`); the table at fault (`StoreConfigurationError`); or an outage (`StoreUnavailableError`).
Loaded with the first commit: a function without writes, in claim mode, never imports it; `diagnosis` loads only
when the transaction fails.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from ..errors import InvalidWriteError, StoreUnavailableError
from .base import Refused, WritesRefused

if TYPE_CHECKING:
    from ..writes import Write
    from .dynamodb import DynamoDBStore

TRANSACTION_CANCELLED = "TransactionCanceledException"
CONFLICT_ATTEMPTS = 8
"""Tries of a transaction refused with TransactionConflict (another transaction on one of its items is running;
botocore does not retry it), with jittered exponential backoff from `CONFLICT_BACKOFF_S`."""
CONFLICT_BACKOFF_S = 0.02
REFUSED_TRANSACTION = ("ValidationException", "ResourceNotFoundException")
"""Errors that refuse a whole transaction for what it asks (a bad expression or value type, a missing table): the
record's own action is well formed and its table exists, so they point at the function's writes."""


def transact(
    store: DynamoDBStore,
    writes: Sequence[Write],
    record_action: dict[str, Any],
    *,
    token: str,
    record_id: str,
) -> Refused | WritesRefused | None:
    """Send the writes and the record's action in one TransactWriteItems, the record's action last.

    ``token`` (the owner, unique per execution) is the ClientRequestToken, so a resent commit is applied once;
    a TransactionConflict is retried with backoff. A cancelled transaction is answered from its
    CancellationReasons, in the order of the actions; without them nothing can be told, so the store is
    reported unavailable (the key stays in flight until its lease ends: fail closed).
    """
    from .dynamodb import record_from_item

    client, table = store.client, store.table_name
    record_action = {k: {**v, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"} for k, v in record_action.items()}
    items = [*(w.action() for w in writes), record_action]
    for attempt in range(CONFLICT_ATTEMPTS):
        try:
            client.transact_write_items(TransactItems=items, ClientRequestToken=token[:36])
            return None
        except ClientError as exc:
            from .diagnosis import store_error, unfit_table  # only a failed call reads the codes

            error = exc.response.get("Error", {})
            code = error.get("Code")
            if code in REFUSED_TRANSACTION and (writes or code != "ResourceNotFoundException"):
                raise unfit_table(client, table) or InvalidWriteError(
                    f"DynamoDB refused the transaction ({code}): {error.get('Message')}"
                ) from exc
            if code != TRANSACTION_CANCELLED:
                raise store_error(exc, table, client) from exc
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if len(reasons) != len(items):
                raise StoreUnavailableError(f"transaction on {record_id} cancelled without reasons") from exc
            if reasons[-1] == "ConditionalCheckFailed":
                item = exc.response["CancellationReasons"][-1].get("Item")
                return Refused(record_from_item(item) if item else store.get(record_id))
            invalid = [i for i, r in enumerate(reasons[:-1]) if r == "ValidationError"]
            if invalid:  # AWS: a write that would make an item too large, a key of the wrong type...
                raise InvalidWriteError(_invalid_writes(writes, invalid, exc.response)) from exc
            failed = tuple(i for i, r in enumerate(reasons[:-1]) if r == "ConditionalCheckFailed")
            if failed:
                return WritesRefused(failed)
            if "TransactionConflict" not in reasons:
                raise (reasons[-1] == "ValidationError" and unfit_table(client, table)) or store_error(
                    exc, table, client
                ) from exc
            if attempt + 1 < CONFLICT_ATTEMPTS:
                time.sleep(CONFLICT_BACKOFF_S * 2**attempt * random.uniform(0.5, 1.5))
        except ParamValidationError as exc:  # botocore's check of a write's parameters (an unknown one, a type)
            if not writes:
                from .diagnosis import store_error

                raise store_error(exc, table, client) from exc
            raise InvalidWriteError(f"botocore refused the transaction: {exc}") from exc
        except BotoCoreError as exc:
            from .diagnosis import store_error

            raise store_error(exc, table, client) from exc
    raise StoreUnavailableError(f"transaction on {record_id} kept conflicting with others")


def _invalid_writes(writes: Sequence[Write], invalid: list[int], response: dict[str, Any]) -> str:
    """What DynamoDB said of the writes it found invalid while applying them (CancellationReasons' ValidationError)."""
    from ..writes import describe

    reasons = response["CancellationReasons"]
    said = "; ".join(f"{describe(i, writes[i])}: {reasons[i].get('Message', 'invalid')}" for i in invalid)
    return f"DynamoDB refused the transaction (ValidationError): {said}"
