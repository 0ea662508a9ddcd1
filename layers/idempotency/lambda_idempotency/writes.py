"""The DynamoDB writes a function commits together with its record (DESIGN.md, "Exactly-once effects").

`current().write` hands each action here. It is brought to the low-level form ``TransactWriteItems`` takes (the
resource form goes through boto3's ``TypeSerializer``) and checked against DynamoDB's transaction rules before
anything is sent, so a broken write fails at the line that added it, with an error that says why, instead of
cancelling the commit after the function's work is done.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, NamedTuple

from .errors import InvalidWriteError

ACTIONS = ("Put", "Update", "Delete", "ConditionCheck")
MAX_ACTIONS = 100
"""DynamoDB's limit per transaction; the record's completion takes one, so a function has 99."""
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024
_TYPES = frozenset({"S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL"})
_BINARY = (bytes, bytearray, str)
"""What botocore takes for a binary value (text is sent as its UTF-8 bytes)."""
MAX_NESTING = 31
"""Containers (M, L) an attribute's value may nest: DynamoDB's 32 levels, the item being the first."""
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
"""A number as DynamoDB takes it, in text: digits, a point, an exponent (no NaN, no infinity, no spaces)."""
MAX_DIGITS = 38
MIN_EXPONENT, MAX_EXPONENT = -130, 125
"""DynamoDB's numbers: 38 significant digits, magnitudes from 1E-130 to 9.99...E+125 (AWS, "Data types")."""
_VALUE_FIELDS = ("Item", "Key", "ExpressionAttributeValues")
_EXPRESSIONS = ("UpdateExpression", "ConditionExpression")
_REQUIRED_EXPRESSION = {"Update": "UpdateExpression", "ConditionCheck": "ConditionExpression"}

RecordKey = tuple[str, dict[str, Any]]
"""Where the idempotency record lives: its table and its low-level key."""


class Write(NamedTuple):
    """One action of the commit, in low-level form, with its approximate size in bytes."""

    kind: str
    table: str
    body: dict[str, Any]
    size: int

    def action(self) -> dict[str, Any]:
        return {self.kind: self.body}

    def item_key(self) -> dict[str, Any]:
        """The key (Key), or for a Put the whole item: the key attributes are among them."""
        key: dict[str, Any] = self.body["Item" if self.kind == "Put" else "Key"]
        return key


def describe(index: int, write: Write) -> str:
    return f"write #{index} ({write.kind} on {write.table})"


def normalise(action: Mapping[str, Any], *, resource: bool) -> Write:
    """The low-level `Write` of one ``{"Put" | "Update" | "Delete" | "ConditionCheck": {...}}`` action."""
    if not isinstance(action, Mapping) or len(action) != 1:
        raise InvalidWriteError(f"a write is one action, {{{' | '.join(ACTIONS)}: {{...}}}}, got {action!r:.200}")
    ((kind, body),) = action.items()
    if kind not in ACTIONS:
        raise InvalidWriteError(f"unknown write action {kind!r}; expected one of {', '.join(ACTIONS)}")
    if not isinstance(body, Mapping):
        raise InvalidWriteError(f"the {kind} action must be a mapping of its parameters")
    table = body.get("TableName")
    if not isinstance(table, str) or not table:
        raise InvalidWriteError(f"the {kind} action needs a TableName")
    required = "Item" if kind == "Put" else "Key"
    if not isinstance(body.get(required), Mapping) or not body[required]:
        raise InvalidWriteError(f"the {kind} action on {table} needs a non-empty {required}")
    expression = _REQUIRED_EXPRESSION.get(kind)
    if expression is not None and not body.get(expression):
        raise InvalidWriteError(f"the {kind} action on {table} needs a {expression}")
    low = dict(body)
    size = 0
    for field in _VALUE_FIELDS:
        if field in low:
            where = f"{kind}.{field}"
            low[field] = _serialise(low[field], where) if resource else _checked(low[field], where)
            size += _item_size(low[field], where)
    names = low.get("ExpressionAttributeNames")
    if names is not None and not (
        isinstance(names, Mapping) and all(isinstance(n, str) and isinstance(v, str) for n, v in names.items())
    ):
        raise InvalidWriteError(f"the ExpressionAttributeNames of the {kind} action on {table} map text to text")
    for expression in _EXPRESSIONS:
        if expression in low:
            text = low[expression]
            if not isinstance(text, str):
                raise InvalidWriteError(f"the {expression} of the {kind} action on {table} must be text")
            size += _utf8_size(text, f"{kind}.{expression}")
    return Write(kind=kind, table=table, body=low, size=size)


def check_can_add(writes: Sequence[Write], new: Write, record: RecordKey | None) -> None:
    """Raise `InvalidWriteError` unless ``new`` can join ``writes`` in one transaction with the record."""
    if record is None:
        raise InvalidWriteError("this store cannot commit DynamoDB writes (use DynamoDBStore, e.g. on moto in tests)")
    if len(writes) + 1 >= MAX_ACTIONS:
        raise InvalidWriteError(
            f"a transaction holds {MAX_ACTIONS} actions and the completion takes one: at most {MAX_ACTIONS - 1} writes"
        )
    record_table, record_key = record
    if _table_name(new.table) == _table_name(record_table) and _contains(new.item_key(), record_key):
        raise InvalidWriteError("a write may not touch the idempotency record itself; the commit completes it")
    known = _key_names([*writes, new], record)
    for index, earlier in enumerate(writes):
        if _same_item(earlier, new, known):
            raise InvalidWriteError(
                f"DynamoDB allows one action per item in a transaction: {new.kind} on {new.table} "
                f"targets the item of {describe(index, earlier)}"
            )
    check_total(writes, new.size)


def check_total(writes: Sequence[Write], extra_bytes: int) -> None:
    """Raise `InvalidWriteError` when the writes plus ``extra_bytes`` (the completion) pass 4 MB."""
    total = sum(w.size for w in writes) + extra_bytes
    if total > MAX_TRANSACTION_BYTES:
        raise InvalidWriteError(f"a transaction carries at most 4 MB; these writes take about {total} bytes")


def _serialise(values: Any, where: str) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeSerializer

    if not isinstance(values, Mapping):
        raise InvalidWriteError(f"{where} must be a mapping")
    serializer = TypeSerializer()
    try:
        return {name: serializer.serialize(value) for name, value in values.items()}
    except RecursionError:
        raise InvalidWriteError(f"{where} nests deeper than DynamoDB's {MAX_NESTING} levels") from None
    except ArithmeticError as exc:  # decimal's traps: a number past the 38 digits DynamoDB stores
        raise InvalidWriteError(f"{where} holds a number DynamoDB cannot store ({type(exc).__name__})") from None
    except (TypeError, ValueError) as exc:
        raise InvalidWriteError(f"{where}: {exc}") from None


def _checked(values: Any, where: str) -> dict[str, Any]:
    if not isinstance(values, Mapping):
        raise InvalidWriteError(f"{where} must be a mapping")
    for name, value in values.items():
        if not (isinstance(value, Mapping) and len(value) == 1 and next(iter(value)) in _TYPES):
            raise InvalidWriteError(
                f"{where}[{name!r:.100}] is not a low-level DynamoDB value like {{'S': 'text'}}; "
                "for plain Python values pass write(..., resource=True)"
            )
    return dict(values)


def _key_names(writes: Sequence[Write], record: RecordKey) -> dict[str, frozenset[str]]:
    """Key attribute names per table, as far as the Key of some action (or the record) tells."""
    names: dict[str, frozenset[str]] = {_table_name(record[0]): frozenset(record[1])}
    for write in writes:
        if write.kind != "Put":
            names.setdefault(_table_name(write.table), frozenset(write.body["Key"]))
    return names


def _table_name(table: str) -> str:
    """The table a TableName names: DynamoDB takes its ARN (``arn:aws:dynamodb:...:table/Name``) as well."""
    if table.startswith("arn:") and ":table/" in table:
        return table.rsplit(":table/", 1)[1]
    return table


def _same_item(a: Write, b: Write, key_names: Mapping[str, frozenset[str]]) -> bool:
    if _table_name(a.table) != _table_name(b.table):
        return False
    if a.kind != "Put":
        return _contains(b.item_key(), a.item_key())
    if b.kind != "Put":
        return _contains(a.item_key(), b.item_key())
    names = key_names.get(_table_name(a.table))
    if names is None:
        return _canonical(a.item_key()) == _canonical(b.item_key())
    return all(_canonical(a.item_key().get(n)) == _canonical(b.item_key().get(n)) for n in names)


def _contains(item: Mapping[str, Any], key: Mapping[str, Any]) -> bool:
    return all(name in item and _canonical(item[name]) == _canonical(value) for name, value in key.items())


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr)


def item_size(item: Mapping[str, Any]) -> int:
    """A low-level item's size by DynamoDB's rules, roughly (`_value_size`): the store measures the record's with it."""
    return _item_size(item, "the item")


def _item_size(values: Mapping[str, Any], where: str) -> int:
    return sum(
        _name_size(name, where) + _value_size(value, f"{where}[{name!r:.100}]", 1) for name, value in values.items()
    )


def _value_size(value: Any, where: str, depth: int) -> int:
    """The value's size by DynamoDB's item-size rules, roughly (strings and binaries by length, numbers by digits,
    containers summed), once it is checked to be what the wire takes: a hostile value is `InvalidWriteError` here,
    not an ``AttributeError`` or a ``RecursionError`` (containers nest at most `MAX_NESTING` deep), nor a refusal
    at the commit, after the function's work is done."""
    if not (isinstance(value, Mapping) and len(value) == 1):
        raise InvalidWriteError(f"{where} is not a low-level DynamoDB value like {{'S': 'text'}}")
    ((kind, data),) = value.items()
    if kind == "S" and isinstance(data, str):
        return _utf8_size(data, where)
    if kind == "N" and isinstance(data, str):
        _number(data, where)
        return _utf8_size(data, where)
    if kind == "B" and isinstance(data, _BINARY):
        return _binary_size(data, where)
    if kind in ("SS", "NS") and isinstance(data, list | tuple) and all(isinstance(x, str) for x in data):
        size = sum(_utf8_size(x, where) for x in data)
        _check_set(kind, [_number(x, where) for x in data] if kind == "NS" else data, data, where)
        return size
    if kind == "BS" and isinstance(data, list | tuple) and all(isinstance(x, _BINARY) for x in data):
        size = sum(_binary_size(x, where) for x in data)
        _check_set(kind, [x.encode() if isinstance(x, str) else bytes(x) for x in data], data, where)
        return size
    if kind == "BOOL" and isinstance(data, bool):
        return 1
    if kind == "NULL" and data is True:
        return 1
    if kind == "NULL" and isinstance(data, bool):
        raise InvalidWriteError(f"{where}: DynamoDB's NULL is always True, got {{'NULL': False}}")
    if kind in ("M", "L") and depth > MAX_NESTING:
        raise InvalidWriteError(f"{where} nests deeper than DynamoDB's {MAX_NESTING} levels")
    if kind == "M" and isinstance(data, Mapping):
        return 3 + sum(
            1 + _name_size(k, where) + _value_size(v, f"{where}[{k!r:.100}]", depth + 1) for k, v in data.items()
        )
    if kind == "L" and isinstance(data, list | tuple):
        return 3 + sum(1 + _value_size(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(data))
    raise InvalidWriteError(f"{where} is not a valid low-level DynamoDB value: {kind!r:.20} of {type(data).__name__}")


def _number(text: str, where: str) -> Decimal:
    """The value of a number DynamoDB stores, or `InvalidWriteError` (DynamoDB refuses it at the commit)."""
    if not _NUMBER.fullmatch(text):
        raise InvalidWriteError(f"{where}: {text!r:.100} is not a number DynamoDB takes")
    value = Decimal(text)
    if value.is_zero():
        return value
    digits = "".join(map(str, value.as_tuple().digits)).strip("0")  # not normalize(): it rounds to 28 digits
    if len(digits) > MAX_DIGITS:
        raise InvalidWriteError(f"{where}: {text!r:.100} has more than DynamoDB's {MAX_DIGITS} significant digits")
    if not MIN_EXPONENT <= value.adjusted() <= MAX_EXPONENT:
        raise InvalidWriteError(f"{where}: {text!r:.100} is out of DynamoDB's range (1E-130 to 9.99E+125)")
    return value


def _check_set(kind: str, values: Sequence[Any], texts: Sequence[Any], where: str) -> None:
    """DynamoDB's sets are not empty and hold each value once (numbers by value: "1" and "1.0" are one)."""
    if not values:
        raise InvalidWriteError(f"{where}: DynamoDB refuses an empty set ({kind})")
    seen: set[Any] = set()
    for value, text in zip(values, texts, strict=True):
        if value in seen:
            raise InvalidWriteError(f"{where}: the {kind} holds {text!r:.100} twice")
        seen.add(value)


def _name_size(name: Any, where: str) -> int:
    if not isinstance(name, str) or not name:
        raise InvalidWriteError(f"{where}: attribute names are non-empty text, got {name!r:.100}")
    return _utf8_size(name, where)


def _utf8_size(text: str, where: str) -> int:
    try:
        return len(text.encode())
    except UnicodeEncodeError:
        raise InvalidWriteError(f"{where} is not valid Unicode text (DynamoDB stores UTF-8)") from None


def _binary_size(data: bytes | bytearray | str, where: str) -> int:
    return _utf8_size(data, where) if isinstance(data, str) else len(data)
