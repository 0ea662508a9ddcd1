"""Record ids are part of the stored data: a table written by one version must be found by the next.

`record_id` writes the hashed JSON itself (for CPU); it must stay byte-for-byte ``json.dumps([scope, key])``.
"""

from __future__ import annotations

import hashlib
import json

from hypothesis import given, settings
from hypothesis import strategies as st
from lambda_idempotency.keys import record_id

texts = st.text(min_size=1, max_size=40)


@settings(max_examples=300, deadline=None)
@given(operation=texts, scope=st.none() | texts, key=texts)
def test_record_id_is_the_sha256_of_the_json_of_scope_and_key(operation: str, scope: str | None, key: str) -> None:
    documented = hashlib.sha256(json.dumps([scope, key]).encode()).hexdigest()
    assert record_id(operation, scope, key) == f"{operation}#{documented}"


def test_a_known_record_id_never_changes() -> None:
    expected = "678b915c7da2e516723fcb05cb50804da1bebed773513ff5f9a34ae3d7045d8e"  # sha256 of [null, "order-1"]
    assert record_id("pay", None, "order-1") == f"pay#{expected}"
