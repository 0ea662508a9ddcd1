"""`lambda-idempotency`: inspect and repair an idempotency table from a terminal.

For support and operators: see what a key holds (`show`), find stuck executions (`list --status IN_PROGRESS`), let
a stuck or wrongly cached operation run again (`delete`, after a confirmation), count records (`stats`), and create
a table (`create-table`). Only the console script imports this module, so the Lambda layer never loads rich
(pip extra ``cli``). Exit codes: 0 done, 1 no such record or not confirmed, 2 the table, credentials or input are wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

try:
    from rich.console import Console, Group, RenderableType
    from rich.prompt import Confirm
    from rich.table import Table
    from rich.text import Text
except ModuleNotFoundError as missing:  # one line, not a traceback, for an install without the extra
    raise SystemExit(
        'lambda-idempotency\'s CLI needs rich: pip install ".[cli]" (from a clone), or add rich>=13'
    ) from missing

from .errors import (
    InvalidKeyError,
    MissingScopeError,
    StoreConfigurationError,
    StoreUnavailableError,
)
from .key_hashing import SECRET_ENV, KeyHasher, is_hidden
from .keys import SCOPE_DIGEST_PREFIX, check_operation, normalise_key, normalise_scope
from .record import STATUSES, Record
from .record_fields import lease_text, record_fields
from .scan import ForeignItemError, Scan, operation_of, record_of
from .stores.dynamodb import DynamoDBStore, create_table
from .terminal import folding, json_text, shown

TABLE_ENV = "LAMBDA_IDEMPOTENCY_TABLE"
MAX_SCAN = 100_000
"""Items `show` and `delete` read, at most, looking for a key under any scope (``--max-scan`` to change)."""
CREDENTIAL_ERRORS = {
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "ExpiredTokenException",
    "AccessDeniedException",
    "MissingAuthenticationTokenException",
}


class CliError(Exception):
    """A failure the user can fix; its message is printed and it exits with ``code``."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # No markup and no emoji codes: stored keys and scopes are caller-controlled text (`[/oops]`, `[link=...]`).
    out = Console(highlight=False, soft_wrap=args.json, markup=False, emoji=False)
    # soft_wrap: an error is one line however long, never wrapped at the console's width.
    err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False, emoji=False)
    try:
        if not args.table:
            raise CliError(f"no table: pass --table or set {TABLE_ENV}")
        store = DynamoDBStore(args.table, endpoint_url=args.endpoint_url, region_name=args.region)
        result: Output = args.command(store, args, err)
    except CliError as exc:
        err.print(_error(str(exc)))
        return exc.code
    except (InvalidKeyError, MissingScopeError, ForeignItemError, StoreConfigurationError) as exc:
        err.print(_error(str(exc)))
        return 2
    except (ClientError, BotoCoreError, StoreUnavailableError) as exc:  # the last: create-table's, typed by the store
        cause = exc.__cause__ if isinstance(exc, StoreUnavailableError) else exc
        reason = cause if isinstance(cause, (ClientError, BotoCoreError)) else exc
        err.print(_error(_explain(reason, args.table, args.endpoint_url, args.region)))
        return 2
    except KeyboardInterrupt:
        return 130
    if args.json:
        out.print(Text(json_text(result.data)), soft_wrap=True)
    else:
        out.print(result.view)
    return result.code


def _error(message: str) -> Text:
    return Text.assemble(("error:", "red"), " ", shown(message))


class Output:
    """What a command shows: ``data`` for ``--json``, ``view`` (a rich renderable or text) for people."""

    def __init__(self, data: Any, view: RenderableType, code: int = 0) -> None:
        self.data = data
        self.view = view
        self.code = code


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--table", default=os.environ.get(TABLE_ENV), help=f"table name (default: ${TABLE_ENV})")
    common.add_argument("--endpoint-url", help="DynamoDB endpoint, e.g. http://127.0.0.1:8000 for DynamoDB Local")
    common.add_argument("--region", help="AWS region (default: the AWS configuration's)")
    common.add_argument("--json", action="store_true", help="print JSON instead of tables")

    parser = argparse.ArgumentParser(prog="lambda-idempotency", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(name: str, handler: Any, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=help_text, description=help_text)
        sub.set_defaults(command=handler)
        return sub

    command("create-table", _create_table, "create the table (pk, on-demand, TTL on expires_at)")
    for name, handler, help_text in (
        ("show", _show, "show the record of one key"),
        ("delete", _delete, "delete the record of one key, so the operation runs again on the next call"),
    ):
        sub = command(name, handler, help_text)
        sub.add_argument("key", help="the raw idempotency key")
        sub.add_argument("--operation", required=True, help="the operation the key belongs to")
        sub.add_argument(
            "--scope",
            help="the scope (tenant, caller) the key was stored under; without it, and with no unscoped record, "
            "the scopes that hold the key are listed",
        )
        sub.add_argument(
            "--max-scan",
            type=_positive,
            default=MAX_SCAN,
            help=f"items read at most, looking for the key under any scope (default {MAX_SCAN})",
        )
        if name == "delete":
            sub.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    listing = command("list", _list, "list records with their raw keys and scopes")
    listing.add_argument("--status", choices=[s.value for s in STATUSES], help="only records in this status")
    listing.add_argument("--operation", help="only records of this operation")
    listing.add_argument("--limit", type=_positive, help="stop after this many records")
    stats = command("stats", _stats, "count records by operation and status")
    for scanning in (listing, stats):
        scanning.add_argument(
            "--page-size", type=_positive, help="items read per Scan call (to spread a big scan's load)"
        )
    return parser


def _positive(text: str) -> int:
    """A count of at least 1: ``--limit 0`` listed a record, ``--page-size 0`` was botocore's parameter error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _create_table(store: DynamoDBStore, args: argparse.Namespace, err: Console) -> Output:
    create_table(store)  # an existing table that cannot serve: StoreConfigurationError, exit 2
    return Output({"table": store.table_name, "ttl_attribute": "expires_at"}, f"table {store.table_name} is ready")


def _show(store: DynamoDBStore, args: argparse.Namespace, err: Console) -> Output:
    record = _get(store, args, err)
    if isinstance(record, Output):
        return record
    assert isinstance(record, Record)  # an unreadable item raised: only `delete` asks for it
    fields = record_fields(record, with_result=True)
    return Output(fields, _record_view(fields))


def _record_view(fields: dict[str, Any]) -> Table:
    view = folding(Table(show_header=False, box=None), "", "")
    for name, value in fields.items():
        view.add_row(Text(name, style="bold"), shown(value))
    return view


def _delete(store: DynamoDBStore, args: argparse.Namespace, err: Console) -> Output:
    """Delete the record shown, only if its owner and status are still those shown (a new claim may have replaced an
    expired record while the operator read the prompt)."""
    record = _get(store, args, err, unreadable=True)
    if isinstance(record, Output):
        return record
    if isinstance(record, Unreadable):
        return _delete_unreadable(store, args, err, record)
    if not args.yes:
        lease = lease_text(record, int(time.time() * 1000))  # held: the execution may still be running
        about = f"attempts: {record.attempts}" + (f"; lease {lease}" if lease else "")
        err.print(shown(f"{record.status} record of key '{record.key}' in {args.operation} ({about})"))
        if not _confirm("Delete it, so the next call runs the operation again?", err):
            return Output({"deleted": False}, "not deleted", code=1)
    shown_as = {"owner": {"S": record.owner}, "status": {"S": record.status.value}}
    deleted, item = _delete_as_shown(store, record.record_id, shown_as)
    if deleted:
        return Output({"deleted": True, "record_id": record.record_id}, DELETED)
    if item is None:
        raise CliError("the record was already gone", code=1)
    fields = record_fields(record_of(item), with_result=True)
    was = f"{record.status}, owner {record.owner}"
    note = f"not deleted: the record changed since it was shown (it was {was}); now it is:"
    view = Group(shown(note), _record_view(fields))
    return Output({"deleted": False, "changed": True, "record": fields}, view, code=1)


DELETED = "deleted; a warm container may still replay it from its local cache until the entry expires"


def _delete_as_shown(
    store: DynamoDBStore, record_id: str, shown_as: dict[str, Any]
) -> tuple[bool, dict[str, Any] | None]:
    """Delete the item only if its owner and status are still those shown (and still absent where they were): a new
    claim may have replaced it while the operator read the prompt. Whether it was deleted; if not, the item as it
    stands now (None: gone)."""
    conditions, names, values = ["attribute_exists(#pk)"], {"#pk": "pk"}, {}
    for placeholder, attribute in (("ow", "owner"), ("st", "status")):
        names[f"#{placeholder}"] = attribute
        if attribute in shown_as:
            conditions.append(f"#{placeholder} = :{placeholder}")
            values[f":{placeholder}"] = shown_as[attribute]
        else:
            conditions.append(f"attribute_not_exists(#{placeholder})")
    try:
        store.client.delete_item(
            TableName=store.table_name,
            Key={"pk": {"S": record_id}},
            ConditionExpression=" AND ".join(conditions),
            ExpressionAttributeNames=names,
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
            **({"ExpressionAttributeValues": values} if values else {}),
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        return False, exc.response.get("Item") or _item(store, record_id)
    return True, None


class Unreadable:
    """An item under the key's record id that is not a record this library can read (another version's status, a
    time of another type): every call of the key raises `ResultUnreadableError` until it is gone."""

    def __init__(self, item: dict[str, Any], reason: str) -> None:
        self.item = item
        self.reason = reason


def _delete_unreadable(store: DynamoDBStore, args: argparse.Namespace, err: Console, found: Unreadable) -> Output:
    """Delete an item the library cannot read, shown as stored, only if its owner and status are still those shown."""
    item = found.item
    rid = item["pk"]["S"]
    err.print(shown(f"{found.reason}; as stored: {json.dumps(item, default=str)}"))
    if not args.yes and not _confirm("Delete it, so the next call runs the operation again?", err):
        return Output({"deleted": False}, "not deleted", code=1)
    if not _delete_as_shown(store, rid, item)[0]:
        note = "not deleted: the item changed since it was shown (or is gone); `show` it again"
        return Output({"deleted": False, "changed": True, "record_id": rid}, note, code=1)
    return Output({"deleted": True, "record_id": rid}, DELETED)


def _list(store: DynamoDBStore, args: argparse.Namespace, err: Console) -> Output:
    operation = check_operation(args.operation) if args.operation is not None else None  # "" is an error
    rows = []
    scan = Scan(store, err, args.page_size, status=args.status, operation=operation, skip_foreign=True)
    for record in scan:
        rows.append(record_fields(record, with_result=False))
        if args.limit is not None and len(rows) >= args.limit:
            break
    view = folding(Table(), "operation", "key", "scope", "status", "attempts", "expires")
    for row in rows:
        status = row["status"]
        if row["expired"] or row["lease"]:  # the lease's first word: held, lapsed, released
            status += " (expired)" if row["expired"] else f" ({row['lease'].split()[0].rstrip(':')})"
        stored = (shown(row[name]) for name in ("operation", "key", "scope"))
        view.add_row(*stored, status, str(row["attempts"]), row["expires_at"])
    return Output(rows, view if rows else "no records", _foreign(scan, err))


def _stats(store: DynamoDBStore, args: argparse.Namespace, err: Console) -> Output:
    now_s = int(time.time())
    counts: Counter[tuple[str, str]] = Counter()
    scan = Scan(store, err, args.page_size, skip_foreign=True)
    for record in scan:
        counts[operation_of(record), "EXPIRED" if record.is_expired(now_s) else record.status.value] += 1
    columns = [s.value for s in STATUSES] + ["EXPIRED"]
    by_operation: dict[str, dict[str, int]] = {}
    for (operation, status), count in sorted(counts.items()):
        by_operation.setdefault(operation, dict.fromkeys(columns, 0))[status] = count
    view = folding(Table(caption="EXPIRED: past expires_at, waiting for TTL deletion"), "operation", *columns, "total")
    for operation, row in by_operation.items():
        view.add_row(shown(operation), *(str(row[c]) for c in columns), str(sum(row.values())))
    total = sum(counts.values())
    return Output({"operations": by_operation, "total": total}, view if total else "no records", _foreign(scan, err))


def _foreign(scan: Scan, err: Console) -> int:
    """The exit code of a listing: 2 when it passed items that are not records (named on stderr), so one odd item,
    written by another tool or version, neither hides the records around it nor goes unnoticed."""
    if not scan.foreign:
        return 0
    more = f" (and {len(scan.foreign) - 1} more such items, skipped)" if len(scan.foreign) > 1 else ""
    err.print(_error(f"{scan.foreign[0]}{more}; the records around it are listed"))
    return 2


def _confirm(question: str, err: Console) -> bool:
    """Ask on the terminal; no answer (end of input, as from a script's empty stdin) means no."""
    try:
        return Confirm.ask(question, console=err, default=False)
    except EOFError:
        return False


def _get(
    store: DynamoDBStore, args: argparse.Namespace, err: Console, *, unreadable: bool = False
) -> Record | Output | Unreadable:
    """The record of the key in ``--scope``; without it, the unscoped record, or else the scopes that hold the key.

    A record written through the HTTP adapter is stored under its caller's scope, which an operator rarely knows:
    the scopes found are listed (exit code 1), and none is picked for them. `Scan` knows how keys are stored.
    """
    operation = check_operation(args.operation)
    key = normalise_key(args.key)
    try:
        hasher = KeyHasher(operation, os.environb.get(SECRET_ENV.encode()))
    except ValueError as exc:  # a secret under 16 bytes
        raise CliError(f"{SECRET_ENV}: {exc}") from None
    for scope in _stored_scopes(args.scope):
        item = _item(store, hasher.record_id(scope, key))
        if item is not None:
            try:
                return _as_typed(record_of(item), hasher, key, scope)
            except ForeignItemError as exc:
                if not unreadable:
                    raise
                return Unreadable(item, str(exc))
    stored_keys = [key, hasher.hide("key", key)]
    if args.scope is not None and is_hidden(args.scope):
        # A hashed scope (hash_keys), as the search below lists it: the record id needs the raw scope, so find the
        # record by its stored key and scope hashes instead.
        for found in Scan(store, err, None, operation=operation, keys=stored_keys, scope=args.scope):
            item = _item(store, found.record_id)
            if item is not None:
                return _as_typed(record_of(item), hasher, key, None)
    if args.scope is not None:
        raise CliError(f"no record for key '{key}' of operation '{operation}' in scope '{args.scope}'", code=1)
    scan = Scan(store, err, None, operation=operation, keys=stored_keys, max_scanned=args.max_scan)
    rows = [record_fields(record, with_result=False) for record in scan]
    searched = "" if scan.complete else f" (searched the first {scan.scanned} items: --max-scan to read more)"
    if not rows:
        raise CliError(f"no record for key '{key}' of operation '{operation}', in any scope{searched}", code=1)
    title = f"no unscoped record; the key is stored in these scopes{searched}"
    view = folding(Table(title=title), "scope", "status", "attempts", "expires")
    for row in rows:
        view.add_row(shown(row["scope"]), row["status"], str(row["attempts"]), row["expires_at"])
    hint = "pass --scope to pick one"
    return Output({"key": key, "operation": operation, "scopes": rows, "complete": scan.complete}, Group(view, hint), 1)


def _stored_scopes(scope: str | None) -> list[str | None]:
    """The stored forms ``--scope`` may stand for: the scope as the library stores it, and, for a digest as `list` and
    the scope search show a long or odd scope (``sha256:<hex>``), that digest itself."""
    stored = [normalise_scope(scope)]
    if scope is not None and _DIGEST.fullmatch(scope):
        stored.append(scope)
    return stored


def _as_typed(record: Record, hasher: KeyHasher, key: str, scope: str | None) -> Record:
    """The record with stored hashes of key and scope (``hash_keys``) replaced by what the operator typed, once they
    are checked to match: the table holds no text to show."""
    if is_hidden(record.key) and record.key == hasher.hide("key", key):
        record = record.replace(key=key)
    if is_hidden(record.scope) and scope is not None and record.scope == hasher.hide("scope", scope):
        record = record.replace(scope=scope)
    return record


_DIGEST = re.compile(re.escape(SCOPE_DIGEST_PREFIX) + "[0-9a-f]{64}")


def _item(store: DynamoDBStore, rid: str) -> dict[str, Any] | None:
    response = store.client.get_item(TableName=store.table_name, Key={"pk": {"S": rid}}, ConsistentRead=True)
    item: dict[str, Any] | None = response.get("Item")
    return item


def _explain(exc: Exception, table: str, endpoint: str | None, region: str | None = None) -> str:
    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
    if isinstance(exc, EndpointConnectionError):
        return f"cannot reach DynamoDB at {endpoint or 'the default endpoint'}: {exc}"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        if code == "ResourceNotFoundException":
            where = (f" --endpoint-url {endpoint}" if endpoint else "") + (f" --region {region}" if region else "")
            command = f"lambda-idempotency create-table --table {table}{where}"
            return f"table {table!r} not found (create it with `{command}`)"
        if code in CREDENTIAL_ERRORS:
            return f"AWS rejected the credentials ({code}): {error.get('Message', '')}"
    return str(exc)


if __name__ == "__main__":
    sys.exit(main())
