"""The story the demo tells, step by step, with the invariant each step must keep.

Every check is counted from the outside: charges from the gateway's table, emails from SES's own counter,
responses as a client sees them. A failed check is printed and makes the demo exit non-zero.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from lambda_idempotency.lease import LEASE_MARGIN_MS

from tools.sandbox import FunctionError
from tools.sqs_source import sqs_record

from .stack import LambdaContext, LocalStack
from .template import ROOT

EVENTS = ROOT / "events"
CONCURRENT_CLIENTS = 10
RETRIES = 5
POLL_S = 0.5
GATEWAY_LATENCY_MS = "300"
"""The simulated gateway takes this long per charge, so concurrent duplicates really overlap."""
LEASE_MS = 1_000
"""What is left of the Lambda's time in the chapter that times out: the lease it holds, plus the margin."""


class LambdaTimeout(BaseException):
    """How the demo stops a function as Lambda's timeout would: ``except Exception`` does not see it."""


def _time_out(**_: Any) -> None:
    raise LambdaTimeout("the function timed out")


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def for_payment(event: dict[str, Any], payment_id: str) -> dict[str, Any]:
    """``GET /payments/{id}`` (payment-get.json) for ``payment_id``: ids are random, so a file cannot know one."""
    changed = copy.deepcopy(event)
    changed["rawPath"] = changed["requestContext"]["http"]["path"] = f"/payments/{payment_id}"
    changed["pathParameters"] = {"id": payment_id}
    return changed


def with_key(event: dict[str, Any], key: str) -> dict[str, Any]:
    changed = copy.deepcopy(event)
    changed["headers"]["idempotency-key"] = key
    return changed


class Functions(Protocol):
    """Where the story's functions run: in this process (`LocalStack`) or on the Lambda runtime (demo.runtime)."""

    real_timeouts: bool

    def load(self, logical_id: str, GATEWAY_LATENCY_MS: str = "0") -> Any: ...


@dataclass
class InProcessFunctions:
    """Each load a new module of the function in this process: a new container, as `LocalStack` makes it."""

    stack: LocalStack
    real_timeouts = False

    def load(self, logical_id: str, GATEWAY_LATENCY_MS: str = "0") -> Any:
        return self.stack.load_function(logical_id, GATEWAY_LATENCY_MS=GATEWAY_LATENCY_MS)


@dataclass
class Story:
    stack: LocalStack
    say: Callable[[str], None] = print
    failures: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    functions: Functions | None = None

    def __post_init__(self) -> None:
        if self.functions is None:
            self.functions = InProcessFunctions(self.stack)

    def check(self, ok: bool, claim: str) -> None:
        self.say(f"    {'ok  ' if ok else 'FAIL'} {claim}")
        if not ok:
            self.failures.append(claim)

    def post(self, container: ModuleType, event: dict[str, Any], remaining_ms: int = 10_000) -> dict[str, Any]:
        response: dict[str, Any] = container.handler(event, LambdaContext("PaymentFunction", remaining_ms))
        return response

    def run(self) -> bool:
        for chapter in (self.payments, self.emails):
            try:
                chapter()
            except Exception as exc:
                self.check(False, f"{chapter.__name__} stopped: {type(exc).__name__}: {exc}")
        self.counts["charges"] = self.stack.count_items("GatewayChargesTable")
        self.counts["payments"] = self.stack.count_items("PaymentsTable")
        self.say("")
        self.say(
            f"Summary: {self.counts['charges']} charges for {self.counts['payments']} payments, "
            f"{self.counts.get('emails', '?')} emails sent for {self.counts.get('email_ids', '?')} email ids, "
            f"{len(self.failures)} failed checks."
        )
        return not self.failures

    def payments(self) -> None:
        stack = self.stack
        warm = self.load("PaymentFunction", GATEWAY_LATENCY_MS=GATEWAY_LATENCY_MS)
        create = load_event("payment-create.json")
        self.say("1. A client POSTs /payments (events/payment-create.json); the 201 is lost on the way back.")
        first = self.post(warm, create)
        self.check(first["statusCode"] == 201, f"the function answered {first['statusCode']}")
        self.check(stack.count_items("GatewayChargesTable") == 1, "the card was charged once")

        self.say(f"2. The client retries {RETRIES} times with the same Idempotency-Key (events/payment-retry.json).")
        retry = load_event("payment-retry.json")
        retries = [self.post(warm, retry) for _ in range(RETRIES)]
        self.same_answers(first, retries)

        self.say(f"3. {CONCURRENT_CLIENTS} clients, each on its own cold container, send the same request at once.")
        answers = self.concurrently([create] * CONCURRENT_CLIENTS)
        self.same_answers(first, answers)
        self.check(stack.count_items("GatewayChargesTable") == 1, "still one charge")

        self.say(
            f"4. A new payment, sent by {CONCURRENT_CLIENTS} clients at the same instant (the first is in flight)."
        )
        race = with_key(create, str(uuid.uuid4()))
        answers = self.concurrently([race] * CONCURRENT_CLIENTS, retry_in_progress=True)
        fresh = [a for a in answers if "Idempotent-Replayed" not in a.get("headers", {})]
        self.check(len(fresh) == 1, f"one client's request ran, {len(answers) - len(fresh)} got the replay")
        self.check(len({a["body"] for a in answers}) == 1, "every client got the same 201 body")
        self.check(stack.count_items("GatewayChargesTable") == 2, "one charge for the new payment (2 in all)")

        self.say("5. The first key again, with another amount (events/payment-key-reused.json).")
        reused = self.post(warm, load_event("payment-key-reused.json"))
        self.check(reused["statusCode"] == 422, f"rejected with {reused['statusCode']} (key reused)")
        self.check(stack.count_items("GatewayChargesTable") == 2, "nothing charged (2 in all)")

        self.say("6. An invalid body (events/payment-invalid-body.json), then its correction under the same key.")
        invalid = load_event("payment-invalid-body.json")
        rejected = self.post(warm, invalid)
        self.check(rejected["statusCode"] == 400, f"rejected with {rejected['statusCode']} before any claim")
        corrected = dict(invalid, body=create["body"])
        accepted = self.post(warm, corrected)
        self.check(accepted["statusCode"] == 201, f"the corrected retry answered {accepted['statusCode']}")
        self.check(stack.count_items("GatewayChargesTable") == 3, "charged once for it (3 in all)")

        if self.load_timeouts():
            self.say("7. A new payment times out in the middle of the charge: Lambda's runtime kills the function.")
            self.real_timeout_then_retry(with_key(create, str(uuid.uuid4())))
        else:
            self.say("7. A new payment times out after the charge, as its payment and completion are committed.")
            self.timeout_then_retry(with_key(create, str(uuid.uuid4())))

        self.say("8. GET /payments/{id} (events/payment-get.json, with the id the 201 gave) and an unknown id.")
        got = self.post(warm, for_payment(load_event("payment-get.json"), json.loads(first["body"])["payment_id"]))
        self.check(
            got["statusCode"] == 200 and json.loads(got["body"]) == json.loads(first["body"]),
            "the payment reads back as created",
        )
        missing = self.post(warm, load_event("payment-get-missing.json"))
        self.check(missing["statusCode"] == 404, f"an unknown id answers {missing['statusCode']}")

    def load(self, logical_id: str, GATEWAY_LATENCY_MS: str = "0") -> Any:
        assert self.functions is not None
        return self.functions.load(logical_id, GATEWAY_LATENCY_MS=GATEWAY_LATENCY_MS)

    def load_timeouts(self) -> bool:
        assert self.functions is not None
        return self.functions.real_timeouts

    def real_timeout_then_retry(self, event: dict[str, Any]) -> None:
        """On the Lambda runtime: the function's Timeout is 5 s and the gateway answers a new charge after 60 s, so
        the runtime kills the function after the charge is recorded. The retry after the lease charges nothing."""
        from .runtime import Deployed, RuntimeFunctions

        assert isinstance(self.functions, RuntimeFunctions)
        parameters = {"GatewayLatencyMs": "60000", "SenderEmail": self.stack.names["SenderEmail"]}
        slow = Deployed(self.functions.runtime(parameters, timeouts={"PaymentFunction": 5}), "PaymentFunction")
        self.post(slow, load_event("payment-get-missing.json"))  # a warm sandbox: its start is not in the 5 s
        try:
            self.post(slow, event)
            self.check(False, "the function was not stopped")
        except FunctionError as error:
            self.check(error.timed_out, f"the runtime stopped it: {error.message}")
        self.check(self.stack.count_items("GatewayChargesTable") == 4, "charged (4 in all)")
        self.check(self.stack.count_items("PaymentsTable") == 3, "no payment recorded")
        self.say("   The client retries every 0.5 s; 409 until the lease the function took has passed.")
        started = time.monotonic()
        while (retried := self.post(slow, event))["statusCode"] == 409 and time.monotonic() < started + 120:
            time.sleep(POLL_S)
        self.check(retried["statusCode"] == 201, f"the retry answered {retried['statusCode']}")
        self.say(f"    (201 after {time.monotonic() - started:.1f} s)")
        self.check(self.stack.count_items("GatewayChargesTable") == 4, "still 4 charges: the gateway knew the key")
        self.check(self.stack.count_items("PaymentsTable") == 4, "the payment recorded once (4 in all)")

    def timeout_then_retry(self, event: dict[str, Any]) -> None:
        """The function is stopped (a `BaseException`, as a Lambda timeout) as its commit is sent; the retry after
        the lease takes over, finds the charge saved as a step and commits the payment."""
        stack = self.stack
        crashing = stack.load_function("PaymentFunction")
        crashing.store.client.meta.events.register("before-call.dynamodb.TransactWriteItems", _time_out)
        try:
            self.post(crashing, event, remaining_ms=LEASE_MS)
            self.check(False, "the function was not stopped")
        except LambdaTimeout:
            pass
        self.check(stack.count_items("GatewayChargesTable") == 4, "charged (4 in all)")
        self.check(stack.count_items("PaymentsTable") == 3, "no payment recorded: nothing of the commit was written")
        time.sleep(LEASE_MS / 1000 + LEASE_MARGIN_MS / 1000 + 0.2)
        self.say("   The client retries after the lease (the rest of the Lambda's time + 1 s) has passed.")
        retrying = stack.load_function("PaymentFunction")
        gateway_calls: list[str] = []

        def count_charges(params: dict[str, Any], **_: Any) -> None:  # the claim is a PutItem too: count the gateway's
            if params["TableName"] == stack.names["GatewayChargesTable"]:
                gateway_calls.append("charge")

        retrying.store.client.meta.events.register("before-parameter-build.dynamodb.PutItem", count_charges)
        retried = self.post(retrying, event)
        self.check(retried["statusCode"] == 201, f"the retry answered {retried['statusCode']}")
        self.check(not gateway_calls, "the gateway was not called again: the charge saved as a step was reused")
        self.check(stack.count_items("GatewayChargesTable") == 4, "still 4 charges")
        self.check(stack.count_items("PaymentsTable") == 4, "the payment recorded once (4 in all)")

    def same_answers(self, first: dict[str, Any], answers: list[dict[str, Any]]) -> None:
        statuses = sorted({a["statusCode"] for a in answers})
        self.check(statuses == [201], f"every answer was 201 (got {statuses})")
        self.check(all(a["body"] == first["body"] for a in answers), "every answer carried the first 201's body")
        marked = sum(a.get("headers", {}).get("Idempotent-Replayed") == "true" for a in answers)
        self.check(marked == len(answers), f"{marked} of {len(answers)} marked Idempotent-Replayed: true")

    def concurrently(self, events: list[dict[str, Any]], *, retry_in_progress: bool = False) -> list[dict[str, Any]]:
        """Each event from its own container, all released at once; a client answered 409 polls again.

        Clients poll every `POLL_S` rather than wait the whole Retry-After, which is the rest of the holder's lease
        (up to the function timeout), so the story does not stall for it.
        """
        containers = [self.load("PaymentFunction", GATEWAY_LATENCY_MS=GATEWAY_LATENCY_MS) for _ in events]
        start = threading.Barrier(len(events))
        answers: list[dict[str, Any]] = [{} for _ in events]
        conflicts: list[str] = []

        def client(index: int) -> None:
            start.wait()
            while True:
                answer = self.post(containers[index], events[index])
                if answer["statusCode"] != 409 or not retry_in_progress:
                    answers[index] = answer
                    return
                conflicts.append(answer["headers"]["Retry-After"])
                time.sleep(POLL_S)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(len(events))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if retry_in_progress:
            after = ", ".join(sorted(set(conflicts)))
            self.say(
                f"    ({len(conflicts)} answers were 409 In Progress, Retry-After: {after} s; those clients polled)"
            )
        return answers

    def emails(self) -> None:
        stack = self.stack
        queue = stack.names["EmailQueue"]
        bodies = [record["body"] for record in load_event("email-batch.json")["Records"]]
        email_ids = {json.loads(b)["email_id"] for b in bodies if _is_email(b)}
        sent_before = stack.sent_emails()
        self.say(
            f"9. {len(bodies)} messages enqueued (events/email-batch.json): one email enqueued twice, one malformed."
        )
        for body in bodies:
            stack.sqs.send_message(QueueUrl=queue, MessageBody=body)
        container = self.load("EmailFunction")
        self.say("   The first invocation's response is lost: SQS delivers the whole batch again.")
        rounds = 0
        while True:
            messages = stack.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                break
            rounds += 1
            arn = "arn:aws:sqs:us-east-1:123456789012:" + Path(queue).name
            event = {"Records": [sqs_record(m, arn) for m in messages]}
            response = container.handler(event, LambdaContext("EmailFunction"))
            failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
            bad = {m["MessageId"] for m in messages if not _is_email(m["Body"])}
            self.check(failed == bad, f"receive {rounds}: {len(messages)} messages, failures name exactly {len(bad)}")
            for message in messages:
                lost = rounds == 1
                if message["MessageId"] in failed or lost:
                    stack.sqs.change_message_visibility(
                        QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                    )
                else:
                    stack.sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        self.counts["emails"] = stack.sent_emails() - sent_before
        self.counts["email_ids"] = len(email_ids)
        self.check(self.counts["emails"] == len(email_ids), f"{self.counts['emails']} emails sent, one per email_id")
        dead = stack.sqs.get_queue_attributes(
            QueueUrl=stack.names["EmailDeadLetterQueue"], AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]
        self.check(dead == "1", f"the malformed message reached the dead-letter queue after {rounds} receives")


def _is_email(body: str) -> bool:
    try:
        data = json.loads(body)
    except ValueError:
        return False
    return isinstance(data, dict) and "email_id" in data
