"""Echoes the event it got, or answers with the response the request's body describes (for response mapping)."""

from __future__ import annotations

import json
from typing import Any


def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    if event.get("rawPath", "").endswith("/respond"):
        return json.loads(event["body"])
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"event": event, "remaining_ms": context.get_remaining_time_in_millis()}),
    }
