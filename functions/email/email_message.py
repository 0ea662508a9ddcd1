"""One email to send, as the queue carries it: ``{"email_id", "to", "subject", "text"}``.

``email_id`` is the business id: the producer's own id for this email, the same however often the message is
delivered or enqueued. A message that is not such an object is malformed and fails on its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

FIELDS = ("email_id", "to", "subject", "text")
MAX_SUBJECT = 998
"""RFC 5322's limit for one header line."""


@dataclass(frozen=True, slots=True)
class EmailMessage:
    email_id: str
    to: str
    subject: str
    text: str


class MalformedEmail(ValueError):
    """The message body is not a valid email request; the record fails and, after retries, reaches the DLQ."""


def parse_email(body: str) -> EmailMessage:
    try:
        data = json.loads(body)
    except ValueError:
        raise MalformedEmail("body is not JSON") from None
    if not isinstance(data, dict):
        raise MalformedEmail("body is not a JSON object")
    values = [data.get(name) for name in FIELDS]
    wrong = [
        name for name, value in zip(FIELDS, values, strict=True) if not isinstance(value, str) or not value.strip()
    ]
    if wrong:
        raise MalformedEmail(f"missing or empty: {', '.join(wrong)}")
    email_id, to, subject, text = (str(value) for value in values)
    if "@" not in to:
        raise MalformedEmail("'to' is not an email address")
    if len(subject) > MAX_SUBJECT:
        raise MalformedEmail(f"subject longer than {MAX_SUBJECT} characters")
    return EmailMessage(email_id=email_id, to=to, subject=subject, text=text)
