"""What operators see: one structured log line and (when enabled) one CloudWatch metric per protocol event.

The engine reports events through `emit`; this module decides where they go, so the state machine holds no
logging or metrics policy. Logs go to the standard ``lambda_idempotency`` logger with their fields as ``extra``
(a JSON formatter puts them in the document; Powertools' Logger does once ``copy_config_to_registered_loggers``
gives this logger its handler). Metrics are CloudWatch Embedded Metric Format written by Powertools Metrics, one
document per event with the dimension ``operation``; they are off until `enable_metrics` is called, and then cost
one check per event, so a disabled sink never touches the hot path.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("lambda_idempotency")

EXECUTIONS = "Executions"
"""A claim was won: the function runs (first execution, take-over, or a resent claim that had landed)."""
REPLAYS = "Replays"
"""A finished record (COMPLETED or FAILED) answered the call, from the store or the local cache."""
IN_FLIGHT_CONFLICTS = "InFlightConflicts"
"""Another execution held a live lease: the caller got `InProgressError` (HTTP 409)."""
KEY_REUSE = "KeyReuse"
"""The key came back with another payload: `KeyReuseError` (HTTP 422)."""
LEASE_LOST = "LeaseLost"
"""A finish or release was refused because another execution had taken the lease over."""
STORE_ERRORS = "StoreErrors"
"""The store could not be reached or refused a call for a reason other than a condition."""
RESULT_BYTES = "ResultBytes"
"""Size of a stored result as written (after compression)."""

_UNITS = {RESULT_BYTES: "Bytes"}
DEFAULT_NAMESPACE = "LambdaIdempotency"


class _EmfSink:
    """Writes each event as one EMF document through Powertools' CloudWatch EMF provider."""

    def __init__(self, namespace: str, service: str | None) -> None:
        from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

        self._provider = AmazonCloudWatchEMFProvider
        self._namespace = namespace
        self._service = service

    def publish(self, metric: str, operation: str, value: float) -> None:
        document = self._provider(
            namespace=self._namespace, service=self._service, default_dimensions={"operation": operation}
        )
        document.add_metric(name=metric, unit=_UNITS.get(metric, "Count"), value=value)
        document.flush_metrics()


_sink: _EmfSink | None = None


def enable_metrics(namespace: str | None = None, *, service: str | None = None) -> None:
    """Emit metrics as CloudWatch EMF on stdout (Lambda ships stdout to CloudWatch Logs, which extracts them).

    ``namespace`` defaults to ``POWERTOOLS_METRICS_NAMESPACE``, else ``LambdaIdempotency``; ``service`` (a
    dimension, as Powertools adds it) defaults to ``POWERTOOLS_SERVICE_NAME``. Needs aws-lambda-powertools
    (pip extra ``metrics``); ``POWERTOOLS_METRICS_DISABLED=true`` silences the documents as it does for Powertools.
    """
    global _sink  # noqa: PLW0603 - one sink per process, like the logger it sits beside
    import os

    resolved = namespace or os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_NAMESPACE
    try:
        _sink = _EmfSink(resolved, service)
    except ImportError as exc:
        raise ImportError(
            "metrics need aws-lambda-powertools: pip install aws-lambda-powertools, or '.[metrics]' from a clone"
        ) from exc


def disable_metrics() -> None:
    """Stop emitting metrics (the default)."""
    global _sink  # noqa: PLW0603
    _sink = None


def watching() -> bool:
    """Whether an event goes anywhere (metrics on, or the logger at DEBUG): check it before computing a value."""
    return _sink is not None or logger.isEnabledFor(logging.DEBUG)


def size_of(payload: str | bytes) -> int:
    """Bytes of a stored result: what DynamoDB counts against its item limit."""
    return len(payload) if isinstance(payload, bytes) else len(payload.encode())


def emit(metric: str, operation: str, record_id: str | None = None, value: float = 1) -> None:
    """Report one event: a structured DEBUG log line, and a metric when metrics are enabled."""
    if _sink is not None:
        _sink.publish(metric, operation, value)
    if logger.isEnabledFor(logging.DEBUG):
        fields: dict[str, Any] = {"idempotency_event": metric, "operation": operation, "record_id": record_id}
        if metric in _UNITS:
            fields["value"] = value
        logger.debug("%s %s %s", metric, operation, record_id or "", extra=fields)
