"""Store faults injected below the library, where the network would cause them: botocore's ``before-send`` hook.

`FaultInjector` sits on one real client, recognises each protocol call on the wire (claim, take-over, step save,
heartbeat, complete, fail, the fenced commit, release) from the request body, and answers a chosen one with a
fault instead of the server: a throttling or 500 response as DynamoDB writes it, the exception botocore raises
for a connection reset or a read timeout, or a timeout *after* the request reached the server (the response is
lost, the write landed). Everything else goes to the real server, and botocore's own retry logic sees the faults
exactly as it would see the network's.
"""

from __future__ import annotations

import enum
import json
import threading
from collections import Counter
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError
from botocore.httpsession import URLLib3Session


class Fault(enum.Enum):
    PROVISIONED_THROUGHPUT = "ProvisionedThroughputExceededException"
    THROTTLING = "ThrottlingException"
    SERVER_ERROR = "InternalServerError (500)"
    CONNECTION_RESET = "connection reset"
    TIMEOUT = "read timeout, request lost"
    TIMEOUT_AFTER_LANDING = "read timeout, write landed"


_ERROR_RESPONSES = {
    Fault.PROVISIONED_THROUGHPUT: (400, "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"),
    Fault.THROTTLING: (400, "com.amazon.coral.availability#ThrottlingException"),
    Fault.SERVER_ERROR: (500, "com.amazonaws.dynamodb.v20120810#InternalServerError"),
}


def protocol_call(request: Any) -> str:
    """Which step of the protocol a DynamoDB request is, read from its target header and JSON body."""
    target = request.headers.get("X-Amz-Target", b"")
    operation = (target.decode() if isinstance(target, bytes) else target).rsplit(".", 1)[-1]
    body = json.loads(request.body or b"{}")
    condition = body.get("ConditionExpression", "")
    values = body.get("ExpressionAttributeValues", {})
    if operation == "DeleteItem":
        return "release"
    if operation == "TransactWriteItems":
        record_action = body["TransactItems"][-1]
        return "optimistic_commit" if "attribute_not_exists" in json.dumps(record_action) else "commit"
    if operation not in ("UpdateItem", "PutItem"):
        return operation
    if operation == "PutItem" and "attribute_not_exists" in condition:
        return "claim"
    if operation == "PutItem":  # the finished record, put whole
        return {"COMPLETED": "complete", "FAILED": "fail"}.get(body["Item"]["status"]["S"], operation)
    if ":old" in values:
        return "take_over"
    if ":zero" in values:
        return "release"
    if ":res" in values or ":steps" in values:  # a step set in the map, or the first one writing the map
        return "step"
    if ":lease" in values:
        return "heartbeat"
    return operation


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data


class FaultInjector:
    """Answers ``call`` with ``fault`` on its first ``times`` attempts (every attempt when ``times`` is None)."""

    def __init__(self, client: Any, call: str, fault: Fault, times: int | None) -> None:
        self.call = call
        self.fault = fault
        self.times = times
        self.sent: Counter[str] = Counter()
        self.injected = 0
        self._lock = threading.Lock()
        self._forwarder = URLLib3Session() if fault is Fault.TIMEOUT_AFTER_LANDING else None
        client.meta.events.register_first("before-send.dynamodb", self)

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        call = protocol_call(request)
        with self._lock:
            self.sent[call] += 1
            if call != self.call or (self.times is not None and self.injected >= self.times):
                return None
            self.injected += 1
        if self.fault in _ERROR_RESPONSES:
            status, error_type = _ERROR_RESPONSES[self.fault]
            body = json.dumps({"__type": error_type, "message": f"injected: {self.fault.value}"}).encode()
            headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "injected-fault"}
            return AWSResponse(request.url, status, headers, _Body(body))
        if self.fault is Fault.CONNECTION_RESET:
            raise ConnectionClosedError(endpoint_url=request.url)
        if self._forwarder is not None:
            self._forwarder.send(request)  # the write reaches the table; its answer is lost on the way back
        raise ReadTimeoutError(endpoint_url=request.url)
