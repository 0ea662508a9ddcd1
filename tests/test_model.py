"""A model check of the store contract: hypothesis drives claim / take-over / step save / complete / fail / release /
expire on a real store and on a reference model of a few lines, and after every step both must agree on every record
(its steps included) and on every answer (accepted, or refused with which record).

Runs on the memory store, moto in-process and DynamoDB Local (over HTTP). Time moves only through the requests'
``now``, as the engine's injected clock moves it.
"""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from lambda_idempotency import MemoryStore
from lambda_idempotency.record import Record, Status
from lambda_idempotency.stores.base import ClaimRequest, Refused, Store

from .conftest import client_of, new_dynamodb_store


@dataclasses.dataclass(frozen=True)
class Row:
    """What the model knows of a record; the store's record is compared through the same fields."""

    status: Status
    owner: str
    lease_expires_at: int | None
    expires_at: int
    attempts: int = 1
    result: str | None = None
    steps: tuple[tuple[str, str], ...] = ()
    """The saved steps, sorted by name."""


def row_of(record: Record | None) -> Row | None:
    if record is None:
        return None
    result = record.result if isinstance(record.result, str) or record.result is None else "<bytes>"
    steps = tuple(sorted((name, str(value)) for name, value in record.steps.items()))
    fields = (record.status, record.owner, record.lease_expires_at, record.expires_at, record.attempts, result, steps)
    return Row(*fields)


class Model:
    """The contract in a few lines: each write is accepted (None) or refused with the row as it stood."""

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}

    def claim(self, rid: str, owner: str, now_s: int, lease: int, expires: int) -> Row | None:
        row = self.rows.get(rid)
        if row is not None and row.expires_at >= now_s:
            return row
        self.rows[rid] = Row(Status.IN_PROGRESS, owner, lease, expires)
        return None

    def take_over(self, rid: str, owner: str, old_owner: str, now_ms: int, lease: int, expires: int) -> Row | None:
        row = self.rows.get(rid)
        if row is None or row.owner != old_owner or row.status is not Status.IN_PROGRESS:
            return self._refused(row)
        if row.lease_expires_at is None or row.lease_expires_at > now_ms:  # a live lease (renewed, say) stays
            return self._refused(row)
        self.rows[rid] = dataclasses.replace(
            row, owner=owner, lease_expires_at=lease, expires_at=expires, attempts=row.attempts + 1
        )
        return None

    def finish(self, rid: str, finished: Row) -> Row | None:
        """The finished row replaces the held one whole."""
        row = self.rows.get(rid)
        if row is None or row.owner != finished.owner or row.status is not Status.IN_PROGRESS:
            return self._refused(row)
        self.rows[rid] = finished
        return None

    def save_step(self, rid: str, owner: str, name: str, result: str) -> Row | None:
        row = self.rows.get(rid)
        if row is None or row.owner != owner or row.status is not Status.IN_PROGRESS:
            return self._refused(row)
        self.rows[rid] = dataclasses.replace(row, steps=tuple(sorted({**dict(row.steps), name: result}.items())))
        return None

    def release(self, rid: str, owner: str, keep_steps: bool) -> Row | None:
        row = self.rows.get(rid)
        if row is None or row.owner != owner:
            return self._refused(row)
        if keep_steps:
            self.rows[rid] = dataclasses.replace(row, lease_expires_at=0)
        else:
            del self.rows[rid]
        return None

    @staticmethod
    def _refused(row: Row | None) -> Row | None:
        return row if row is not None else ABSENT


ABSENT = Row(Status.IN_PROGRESS, "<absent>", None, 0)
"""The model's answer for "refused, and no record was there" (the store answers ``Refused(None)``)."""

KEYS = ["a", "b"]
OWNERS = ["o1", "o2", "o3"]


def machine_for(store: Store) -> type[RuleBasedStateMachine]:
    class StoreAgreesWithModel(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.store = store
            self.model = Model()
            self.prefix = uuid.uuid4().hex  # each run its own records, on a table shared by all runs
            self.now_ms = 1_800_000_000_000

        def rid(self, key: str) -> str:
            return f"model#{self.prefix}#{key}"

        def agree(self, refused: Refused | None, expected: Row | None) -> None:
            if expected is None:
                assert refused is None
            else:
                assert refused is not None
                assert row_of(refused.current) == (None if expected is ABSENT else expected)

        def request(self, key: str, owner: str, lease_s: int, ttl_s: int) -> ClaimRequest:
            lease = self.now_ms + lease_s * 1000
            expires = max(self.now_ms // 1000 + ttl_s, -(-lease // 1000))
            return ClaimRequest(self.rid(key), owner, key, None, None, self.now_ms, lease, expires)

        @rule(
            key=st.sampled_from(KEYS), owner=st.sampled_from(OWNERS), lease=st.integers(1, 10), ttl=st.integers(1, 20)
        )
        def claim(self, key: str, owner: str, lease: int, ttl: int) -> None:
            request = self.request(key, owner, lease, ttl)
            expected = self.model.claim(
                request.record_id, owner, request.now_s, request.lease_expires_at, request.expires_at
            )
            self.agree(self.store.claim(request), expected)

        @rule(
            key=st.sampled_from(KEYS),
            owner=st.sampled_from(OWNERS),
            old=st.sampled_from(OWNERS),
            lease=st.integers(1, 10),
        )
        def take_over(self, key: str, owner: str, old: str, lease: int) -> None:
            request = self.request(key, owner, lease, 60)
            seen = self.model.rows.get(request.record_id)
            previous = Record(request.record_id, Status.IN_PROGRESS, old, 0, attempts=seen.attempts if seen else 1)
            expected = self.model.take_over(
                request.record_id, owner, old, request.now_ms, request.lease_expires_at, request.expires_at
            )
            answer = self.store.take_over(request, previous)
            if isinstance(answer, Record):  # taken: the store answers with the record as it now stands
                assert expected is None
                assert row_of(answer) == self.model.rows[request.record_id]
            else:
                self.agree(answer, expected)

        @rule(
            key=st.sampled_from(KEYS),
            owner=st.sampled_from(OWNERS),
            status=st.sampled_from([Status.COMPLETED, Status.FAILED]),
            ttl=st.integers(1, 20),
        )
        def finish(self, key: str, owner: str, status: Status, ttl: int) -> None:
            rid, expires, result = self.rid(key), self.now_ms // 1000 + ttl, f"{status}-{owner}"
            seen = self.model.rows.get(rid)
            attempts, steps = (seen.attempts, seen.steps) if seen else (1, ())  # what its execution knows of it
            finished = Record(rid, status, owner, expires, key=key, result=result, steps=dict(steps), attempts=attempts)
            expected = self.model.finish(rid, Row(status, owner, None, expires, attempts, result, steps))
            self.agree(self.store.finish(finished), expected)

        @rule(key=st.sampled_from(KEYS), owner=st.sampled_from(OWNERS), name=st.sampled_from(["charge", "email"]))
        def save_step(self, key: str, owner: str, name: str) -> None:
            """A step saved by ``owner``, ``first`` as its execution would know it: no step in the record it holds."""
            rid, result = self.rid(key), f'"{name}-{owner}-{self.now_ms}"'
            seen = self.model.rows.get(rid)
            first = seen is None or seen.owner != owner or not seen.steps
            expected = self.model.save_step(rid, owner, name, result)
            self.agree(self.store.save_step(rid, owner, name, result, first=first), expected)

        @rule(key=st.sampled_from(KEYS), owner=st.sampled_from(OWNERS), keep_steps=st.booleans())
        def release(self, key: str, owner: str, keep_steps: bool) -> None:
            rid = self.rid(key)
            expected = self.model.release(rid, owner, keep_steps)
            self.agree(self.store.release(rid, owner, keep_steps=keep_steps), expected)

        @rule(seconds=st.integers(0, 25))
        def expire(self, seconds: int) -> None:
            """Time passes: leases and TTLs run out (the record stays until DynamoDB's TTL deletes it, late)."""
            self.now_ms += seconds * 1000

        @rule(key=st.sampled_from(KEYS), offset=st.sampled_from([-1, 0, 1]))
        def reach_expiry(self, key: str, offset: int) -> None:
            """Time moves to a second around a record's ``expires_at``: where off-by-one bugs live."""
            row = self.model.rows.get(self.rid(key))
            if row is not None:
                self.now_ms = max(self.now_ms, (row.expires_at + offset) * 1000)

        @invariant()
        def every_record_agrees(self) -> None:
            for key in KEYS:
                assert row_of(self.store.get(self.rid(key))) == self.model.rows.get(self.rid(key))

    return StoreAgreesWithModel


@pytest.mark.parametrize("backend", ["memory", "moto", "dynamodb_local"])
def test_the_store_agrees_with_the_model(request: pytest.FixtureRequest, backend: str) -> None:
    if backend == "memory":
        run_state_machine_as_test(machine_for(MemoryStore()))
        return
    with client_of(request, backend) as client:
        run_state_machine_as_test(machine_for(new_dynamodb_store(client)))
