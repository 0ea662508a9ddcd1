"""The options every decorator reads alike (`idempotent`, `idempotent_function`, `idempotent_http`): durations and
the local cache.

A duration is a `timedelta` or a number of seconds, positive and finite: `math.inf` as a TTL is not "forever" but
an error, told at decoration rather than as an `OverflowError` from deep inside. A lease is kept in whole
milliseconds, rounded up, so a lease shorter than one is one millisecond, never zero.
"""

from __future__ import annotations

import math
import numbers
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .cache import LocalCache


def seconds(value: timedelta | float, what: str, *, allow_zero: bool = False) -> float:
    """``value`` in seconds; `ValueError` naming ``what`` when it is negative, zero (unless ``allow_zero``), NaN or
    infinite, `TypeError` when it is not a number (text, a bool, None)."""
    sign = "non-negative" if allow_zero else "positive"
    told = f"{what} must be a {sign} finite number of seconds or a timedelta, got {value!r}"
    if isinstance(value, timedelta):
        result = value.total_seconds()
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        result = float(value)
    else:  # float() would read "30" and True, and say of None only that it is not a number
        raise TypeError(told)
    if not math.isfinite(result) or not (result >= 0 if allow_zero else result > 0):
        raise ValueError(told)
    return result


def ttl_s(ttl: timedelta | float) -> int:
    """The TTL in whole seconds (DynamoDB's TTL attribute is epoch seconds), rounded up."""
    return math.ceil(seconds(ttl, "ttl"))


def lease_ms(lease: timedelta | float | None) -> int | None:
    """The lease in whole milliseconds, rounded up; None (the default lease) when not given."""
    return None if lease is None else math.ceil(seconds(lease, "lease") * 1000)


def local_cache(option: bool | int) -> LocalCache | None:
    """``local_cache=``: True for the default size, False for none, or a number of entries."""
    from .cache import DEFAULT_SIZE, LocalCache

    if isinstance(option, bool):
        return LocalCache(DEFAULT_SIZE) if option else None
    if not isinstance(option, numbers.Integral):  # "256", 2.5, None: not a size
        raise TypeError(f"local_cache must be True, False or a number of entries, got {option!r}")
    return LocalCache(int(option))
