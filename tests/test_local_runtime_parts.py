"""The local runtime's parts that need no runtime process: the template's runtime settings, the SQS mapping's
acknowledgements (AWS's rules for partial batch responses), and the sandbox's environment."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tools.runtime_pool import FunctionPool, LocalRuntime
from tools.sam_template import SqsSource, TemplateError, load_template
from tools.sandbox import RuntimeConfigurationError, rie_binary
from tools.sqs_source import acknowledged

ROOT = Path(__file__).resolve().parent.parent
SOURCE = SqsSource(queue="Q", batch_size=10, reports_item_failures=True)
MESSAGES = [{"MessageId": f"m{i}", "ReceiptHandle": f"r{i}"} for i in range(3)]


def test_the_template_gives_each_function_its_runtime_settings() -> None:
    template = load_template(ROOT / "template.yaml", parameters={"GatewayLatencyMs": "250"})
    functions = {f.logical_id: f for f in template.functions}
    payment, email = functions["PaymentFunction"], functions["EmailFunction"]
    assert (payment.timeout_s, payment.memory_mb, payment.architecture) == (10, 512, "x86_64")
    assert payment.layers == email.layers == ["IdempotencyLayer"]
    assert payment.environment["GATEWAY_LATENCY_MS"] == "250"
    assert payment.environment["POWERTOOLS_SERVICE_NAME"] == "payment"
    assert email.environment["POWERTOOLS_SERVICE_NAME"] == "email"
    assert email.sqs_sources == [SqsSource("EmailQueue", 10, True)]
    queues = {q.logical_id: q for q in template.queues}
    assert queues["EmailQueue"].dead_letter_queue == "EmailDeadLetterQueue"
    assert queues["EmailQueue"].visibility_timeout_s == 60 and queues["EmailQueue"].max_receive_count == 5


def test_env_vars_replace_only_declared_variables_parameters_first() -> None:
    template = load_template(ROOT / "template.yaml")
    payment = next(f for f in template.functions if f.logical_id == "PaymentFunction")
    payment.apply_env_vars(
        {
            "Parameters": {"POWERTOOLS_LOG_LEVEL": "DEBUG", "UNDECLARED": "x"},
            "PaymentFunction": {"GATEWAY_LATENCY_MS": "9"},
        }
    )
    assert payment.environment["POWERTOOLS_LOG_LEVEL"] == "DEBUG"
    assert payment.environment["GATEWAY_LATENCY_MS"] == "9"
    assert "UNDECLARED" not in payment.environment


def test_a_layer_arn_cannot_run_locally(tmp_path: Path) -> None:
    (tmp_path / "template.yaml").write_text(
        "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: f/\n"
        "      Handler: app.handler\n      Layers:\n        - arn:aws:lambda:us-east-1:1:layer:x:1\n"
    )
    with pytest.raises(TemplateError, match="only the template's own layers"):
        load_template(tmp_path / "template.yaml")


def test_a_foreign_architecture_is_refused() -> None:
    with pytest.raises(RuntimeConfigurationError, match="Architectures is arm64"):
        rie_binary("arm64")


@pytest.mark.parametrize(
    ("response", "deleted"),
    [
        ({"batchItemFailures": [{"itemIdentifier": "m1"}]}, ["m0", "m2"]),
        ({"batchItemFailures": []}, ["m0", "m1", "m2"]),
        (None, ["m0", "m1", "m2"]),
        ({}, ["m0", "m1", "m2"]),
        ({"batchItemFailures": [{"itemIdentifier": "unknown"}]}, []),
        ({"batchItemFailures": [{"itemIdentifier": None}]}, []),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, []),
        ({"batchItemFailures": "m1"}, []),
        ("not an object", []),
    ],
)
def test_partial_batch_responses_follow_lambdas_rules(response: Any, deleted: list[str]) -> None:
    assert [m["MessageId"] for m in acknowledged(MESSAGES, response, SOURCE)] == deleted


def test_without_report_batch_item_failures_a_success_deletes_all() -> None:
    source = SqsSource(queue="Q", batch_size=10, reports_item_failures=False)
    assert acknowledged(MESSAGES, {"batchItemFailures": [{"itemIdentifier": "m1"}]}, source) == MESSAGES


def test_a_sandbox_sees_its_own_function_and_only_passed_through_variables(sam_build: Path) -> None:
    template = load_template(ROOT / "template.yaml")
    runtime = LocalRuntime(
        template, build_dir=sam_build, environ={"SECRET_OF_THE_SHELL": "x", "AWS_REGION": "eu-west-1"}
    )
    payment = next(f for f in template.functions if f.logical_id == "PaymentFunction")
    environment = runtime.environment(payment)
    assert environment["POWERTOOLS_SERVICE_NAME"] == "payment" and "SENDER_EMAIL" not in environment
    assert "SECRET_OF_THE_SHELL" not in environment
    assert (
        environment["AWS_LAMBDA_FUNCTION_TIMEOUT"] == "10" and environment["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512"
    )
    assert environment["AWS_REGION"] == environment["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert environment["PYTHONPATH"].split(":")[0] == str(sam_build / "IdempotencyLayer" / "python")
    assert environment["LAMBDA_TASK_ROOT"] == str(sam_build / "PaymentFunction")


class FakeSandbox:
    """Stands in for an RIE process: counts the invokes it serves at once."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.exit_code: int | None = None
        self.busy = 0
        self.most_busy = 0
        self.process = self

    def poll(self) -> int | None:
        return self.exit_code

    def invoke(self, event: Any) -> Any:
        self.busy += 1
        self.most_busy = max(self.most_busy, self.busy)
        time.sleep(0.05)
        self.busy -= 1
        return event


def test_a_sandbox_serves_one_invoke_at_a_time_and_a_dead_one_is_replaced() -> None:
    started: list[FakeSandbox] = []

    def start(number: int) -> Any:
        started.append(FakeSandbox(number))
        return started[-1]

    pool = FunctionPool(load_template(ROOT / "template.yaml").functions[0], start, cold_starts=2)
    with ThreadPoolExecutor(8) as clients:
        assert list(clients.map(pool.invoke, range(8))) == list(range(8))
    assert 2 <= len(started) <= 8 and all(s.most_busy == 1 for s in started)
    for sandbox in started:
        sandbox.exit_code = -9
    pool.invoke("again")
    assert pool.sandboxes == [started[-1]] and started[-1].exit_code is None, "the dead ones were dropped"
