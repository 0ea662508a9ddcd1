"""What a cold start loads: the import path stays small, and optional parts never load unless used.

Each check runs in a fresh interpreter, so modules other tests imported do not hide a regression.
"""

from __future__ import annotations

import json
import subprocess
import sys

PACKAGE = "lambda_idempotency"
OPTIONAL = {
    f"{PACKAGE}.http",
    f"{PACKAGE}.cli",
    f"{PACKAGE}.client",
    f"{PACKAGE}.batch",
    f"{PACKAGE}.testing",
    f"{PACKAGE}.writes",
    f"{PACKAGE}.stores.memory",
    f"{PACKAGE}.payloads",
    f"{PACKAGE}.offload",
    f"{PACKAGE}.encryption",
    f"{PACKAGE}.key_hashing",
    "aws_encryption_sdk",
    "aws_lambda_powertools",
    "asyncio",
}


def loaded_after(script: str) -> set[str]:
    """Modules ``script`` loads beyond what boto3 had loaded already."""
    program = (
        "import json, sys\nimport boto3\nbefore = set(sys.modules)\n"
        f"{script}\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    return set(json.loads(done.stdout))


def test_importing_the_decorator_and_the_store_loads_only_their_modules() -> None:
    loaded = loaded_after(f"from {PACKAGE} import DynamoDBStore, idempotent")
    assert loaded == {
        PACKAGE,
        f"{PACKAGE}.decorators",
        f"{PACKAGE}.errors",
        f"{PACKAGE}.record",
        f"{PACKAGE}.stores",
        f"{PACKAGE}.stores.base",
        f"{PACKAGE}.stores.dynamodb",
    }


def test_a_decorated_handler_answering_calls_loads_no_optional_part() -> None:
    script = (
        f"from {PACKAGE} import DynamoDBStore, idempotent\n"
        "class Client:\n"
        "    def put_item(self, **request): return {}\n"
        "    def update_item(self, **request): return {}\n"
        "@idempotent(DynamoDBStore('t', client=Client()), key='json(body).id', fingerprint='json(body)')\n"
        "def handler(event, context): return {'ok': True}\n"
        "assert handler({'body': '{\"id\": 1}'}, None) == {'ok': True}\n"
    )
    loaded = loaded_after(script)
    assert {f"{PACKAGE}.engine", f"{PACKAGE}.outcomes", f"{PACKAGE}.effects"} <= loaded  # it ran through the engine
    assert loaded & OPTIONAL == set()


def test_an_offload_loads_nothing_of_s3_until_a_result_needs_it() -> None:
    """A store configured to offload and encrypt costs a cold start its small modules, not the S3 client or the
    Encryption SDK (which `KmsEncryption` loads on its first payload)."""
    script = (
        f"from {PACKAGE} import DynamoDBStore, KmsEncryption, S3Offload, idempotent\n"
        "offload = S3Offload('results-bucket')\n"
        "store = DynamoDBStore('t', client=object(), offload=offload, encryption=KmsEncryption('arn:aws:kms:x'))\n"
        "assert offload._client is None\n"
    )
    loaded = loaded_after(script)
    assert {f"{PACKAGE}.payloads", f"{PACKAGE}.offload", f"{PACKAGE}.encryption"} <= loaded
    assert "aws_encryption_sdk" not in loaded


def test_a_commit_that_succeeds_loads_no_diagnosis() -> None:
    """`stores.transaction` loads with the first commit (here an optimistic call's, with a write); `stores.diagnosis`
    and `service_errors` only when a call fails (DESIGN.md, "Layout")."""
    script = (
        f"from {PACKAGE} import DynamoDBStore, idempotent\n"
        f"from {PACKAGE}.execution import current\n"
        "class Client:\n"
        "    def transact_write_items(self, **request): return {}\n"
        "@idempotent(DynamoDBStore('t', client=Client()), key='id', mode='optimistic')\n"
        "def handler(event, context):\n"
        "    current().write({'Put': {'TableName': 'orders', 'Item': {'id': {'S': 'o-1'}}}})\n"
        "    return {'ok': True}\n"
        "assert handler({'id': 1}, None) == {'ok': True}\n"
    )
    loaded = loaded_after(script)
    assert f"{PACKAGE}.stores.transaction" in loaded  # it committed through the transaction module
    assert loaded & {f"{PACKAGE}.stores.diagnosis", f"{PACKAGE}.service_errors"} == set()
