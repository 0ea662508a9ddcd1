"""``Idempotency-Key`` over API Gateway, Function URLs and ALB: the rules of DESIGN.md "HTTP semantics".

`HttpIdempotency` turns one HTTP event into one guarded run of the handler, built on the core `Guard`:
the key comes from the header, its scope from the authenticated caller, its fingerprint from method, path, query
and body. Outcomes the caller can act on are HTTP answers (problem+json), never unhandled exceptions:
400 missing/invalid key or invalid request, 401 no caller to scope the key to, 409 in flight or taken over by
another execution (``Retry-After``), 422 key reused with another request, 503 store unreachable (at the claim, a
step's save or the commit), 500 store misconfigured (a missing table, denied access, rejected credentials: a retry
cannot help). A `WriteConditionError` (a condition of the handler's own writes failed at the commit: nothing applied,
the key released) is the API's to answer, in its own words: it is raised, for the app's exception handler.
Safe methods (GET, HEAD, OPTIONS, TRACE) never claim.
A response is stored once the handler has run and replayed with ``Idempotent-Replayed: true``, except what tells a
client to retry (408, 425, 429, 5xx): that, an exception or a `RequestValidationError` releases the key, so a
retry runs again.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypedDict, TypeVar, Unpack

from .. import execution as running
from .. import option_values
from ..codec import Serializer, TaggedJsonSerializer
from ..decorators import disabled, warn_about_powertools_switch
from ..engine import Clock, Guard
from ..errors import (
    InProgressError,
    InputTooDeepError,
    KeyReuseError,
    LeaseLostError,
    MissingScopeError,
    ResultNotStoredError,
    StoreConfigurationError,
    StoreUnavailableError,
)
from ..execution import Execution
from ..keys import check_operation, normalise_scope
from ..record import Record, Status
from ..selectors import Arguments
from ..stores.base import Store
from .idempotency_key import HEADER, InvalidIdempotencyKeyError, parse_idempotency_key
from .principal import carries_identity, principal_of
from .problem import checked_docs_url, documented_type, problem
from .request import HttpRequest, MalformedEventError, MalformedRequestError, read_request
from .response import ProxyResponse, mark_replayed, proxy_response
from .validation import RequestValidationError

F = TypeVar("F", bound=Callable[..., Any])
logger = logging.getLogger("lambda_idempotency")

KEY_REQUIRED_BY_DEFAULT = frozenset({"POST", "PATCH"})
"""Methods that are not idempotent by nature; PUT and DELETE are (a key they carry is honoured), and GET is safe."""
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
"""RFC 9110 safe methods: they change nothing, so they never claim a key (Stripe ignores keys on GET, and the IETF
draft scopes the header to non-idempotent methods); a key they carry is ignored, and they run every time."""
RETRY_STATUSES = frozenset({408, 425, 429})
"""Statuses below 500 that tell a client to retry: like 5xx they are never stored, or the retry would get them back."""
FIRST_POLL_S = 0.05
MAX_POLL_S = 1.0


class HttpOptions(TypedDict, total=False):
    validate: Callable[[dict[str, Any]], None] | None
    """Runs before the claim; raise `RequestValidationError` to answer 400 with nothing stored."""
    required: bool | None
    """Whether a request without the header is a 400; None: for POST and PATCH only."""
    principal: Callable[[dict[str, Any]], str | None] | None
    """Reads the caller's identity from the event; default: `principal_of` (JWT, authorizer, IAM, API key). Any text
    is usable (an int counts as its text); None or "" means no principal; any other value is answered 401."""
    anonymous_scope: str | None
    """The scope of requests that carry no identity data at all; None (default) answers them 401. A request with
    identity data the ``principal`` reader cannot read is 401 either way (`principal.carries_identity`)."""
    ttl: timedelta | float
    lease: timedelta | float | None
    renew: bool
    max_retry_after: timedelta | float
    """Caps the 409's ``Retry-After`` (default 1 s; rounded up to whole seconds): the original usually finishes far
    sooner than its lease."""
    wait: timedelta | float
    """How long a duplicate waits for an in-flight original before answering 409 (default 0: a waiting Lambda
    is billed)."""
    local_cache: bool | int
    fail_open: bool
    clock: Clock
    serializer: Serializer | None
    """How stored responses are serialized (default: `TaggedJsonSerializer`), as the decorators' option."""
    hash_keys: bool | bytes
    """Store keyed hashes of the Idempotency-Key and the caller's scope, not their text (default True; a bytes
    secret keys the hashes and the record id, see DESIGN.md "Stored data")."""
    problem_docs: str | None
    """The URL of the API's documentation of its Idempotency-Key problems: the 400s for a missing or invalid key, the
    409 and the 422 then have the ``type`` ``{problem_docs}#{code}`` instead of ``about:blank`` (the IETF draft's
    "Error Scenarios": a link to relevant documentation). An absolute http(s) URL without a fragment."""


@dataclass(frozen=True, slots=True)
class _Claim:
    """What the guard reads from a call: the parsed request's key, scope and fingerprint payload."""

    key: str
    scope: str
    payload: dict[str, Any]


class HttpIdempotency:
    """The configured rules for one operation; `handle` runs one HTTP event through them."""

    def __init__(self, store: Store, *, operation: str, **options: Unpack[HttpOptions]) -> None:
        unknown = sorted(set(options) - HttpOptions.__annotations__.keys())
        if unknown:  # a typo (``fail_opn=``, ``requried=``) must not silently leave the default in force
            raise TypeError(
                f"unknown option(s) {', '.join(unknown)}; the options are {sorted(HttpOptions.__annotations__)}"
            )
        warn_about_powertools_switch()
        self.validate = options.get("validate")
        self.required = options.get("required")
        self.principal = options.get("principal") or principal_of
        self.anonymous_scope = options.get("anonymous_scope")
        if self.anonymous_scope is not None and (not isinstance(self.anonymous_scope, str) or not self.anonymous_scope):
            raise ValueError(f"anonymous_scope must be a non-empty string or None, got {self.anonymous_scope!r}")
        self.wait_s = option_values.seconds(options.get("wait", 0), "wait", allow_zero=True)
        self.max_retry_after = math.ceil(option_values.seconds(options.get("max_retry_after", 1), "max_retry_after"))
        self.problem_docs = checked_docs_url(options.get("problem_docs"))
        self.guard = Guard(
            store=store,
            operation=check_operation(operation),
            key=lambda call: call[0][0].key,
            fingerprint=lambda call: call[0][0].payload,
            scope=lambda call: call[0][0].scope,
            ttl_s=option_values.ttl_s(options.get("ttl", timedelta(hours=24))),
            lease_ms=option_values.lease_ms(options.get("lease")),
            cache_errors=(),
            cache=option_values.local_cache(options.get("local_cache", True)),
            required=True,
            fail_open=options.get("fail_open", False),
            serializer=options.get("serializer") or TaggedJsonSerializer(),
            clock=options.get("clock", time.time),
            renew=options.get("renew", True),
            hash_keys=options.get("hash_keys", True),
        )

    def handle(self, event: dict[str, Any], context: Any, run: Callable[[], Any]) -> ProxyResponse:
        """Answer one HTTP event; ``run`` calls the handler and returns its (proxy) response."""
        try:
            request = read_request(event)
        except MalformedEventError as exc:  # of a recognisable shape: a 400 in its form; any other event raises
            return problem(exc.reply_to, 400, "request-invalid", str(exc))
        key = None
        # A safe method, or disabled (users' unit tests): validate and run, nothing else.
        if request.method not in SAFE_METHODS and not disabled():
            try:
                key = parse_idempotency_key(request.header(HEADER))
            except InvalidIdempotencyKeyError as exc:
                return self._key_problem(request, 400, "idempotency-key-invalid", str(exc))
            if key is None and self._requires_key(request):
                detail = f"this request requires an {HEADER} header"
                return self._key_problem(request, 400, "idempotency-key-missing", detail)
        try:
            request.check_body()
        except (InputTooDeepError, MalformedRequestError) as exc:
            return problem(request, 400, "request-invalid", str(exc))
        if self.validate is not None:
            try:
                self.validate(event)
            except RequestValidationError as exc:
                return _invalid(request, exc)
        if key is None:
            return self._run_unguarded(request, run)
        try:
            scope = self._raw_scope(event)
        except MissingScopeError as exc:
            return problem(request, 401, "principal-required", str(exc))
        return self._run_claimed(request, _Claim(key, scope, request.fingerprint_payload()), context, run)

    def caller_scope(self, event: dict[str, Any]) -> str:
        """The scope this request's keys are stored under (``current().scope`` of its execution); raises
        `MissingScopeError` when it has none. For handlers that keep data per caller, e.g. a GET of what a POST made.
        """
        scope = normalise_scope(self._raw_scope(event))
        assert scope is not None  # _raw_scope never returns None
        return scope

    def _raw_scope(self, event: dict[str, Any]) -> str:
        """The caller's principal, else the anonymous scope for a request with no identity data at all."""
        principal = self.principal(event)
        if isinstance(principal, int) and not isinstance(principal, bool):
            with contextlib.suppress(ValueError):  # past 4,300 digits str() refuses it: not text, so the 401 below
                principal = str(principal)
        if principal is not None and not isinstance(principal, str):
            logger.error("principal= returned a %s, not a str: answering 401", type(principal).__name__)
            raise MissingScopeError(f"the caller's identity could not be read as text (a {type(principal).__name__})")
        if principal:
            return principal
        identified = carries_identity(event)
        if self.anonymous_scope is not None and not identified:
            return self.anonymous_scope
        if identified:  # an authenticated caller must never share the anonymous scope (nor replay its responses)
            raise MissingScopeError(f"an {HEADER} is scoped to its caller, whose identity this API cannot read")
        raise MissingScopeError(f"an {HEADER} is scoped to its caller, and this request has none")

    def _key_problem(
        self, request: HttpRequest, status: int, code: str, detail: str, *, retry_after: int | None = None
    ) -> ProxyResponse:
        """A problem with the request's Idempotency-Key: its ``type`` links ``problem_docs`` when that is set."""
        type_uri = documented_type(self.problem_docs, code)
        return problem(request, status, code, detail, retry_after=retry_after, type_uri=type_uri)

    def _requires_key(self, request: HttpRequest) -> bool:
        return request.method in KEY_REQUIRED_BY_DEFAULT if self.required is None else self.required

    def _run_claimed(self, request: HttpRequest, claim: _Claim, context: Any, run: Callable[[], Any]) -> ProxyResponse:
        call: Arguments = ((claim,), {})
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                started = self.guard.begin(call, context)
            except InProgressError as busy:
                try:
                    changed = self._await_change(claim, deadline)
                except StoreUnavailableError as exc:  # the original runs: never unguarded, whatever fail_open says
                    return self._store_unavailable(request, exc)
                except StoreConfigurationError as exc:
                    logger.error("idempotency store misconfigured for %s: %s", self.guard.operation, exc)
                    return _store_misconfigured(request)
                if changed:
                    continue
                detail = f"a request with this {HEADER} is still being processed"
                retry_after = min(busy.retry_after, self.max_retry_after)
                return self._key_problem(request, 409, "idempotency-key-in-use", detail, retry_after=retry_after)
            except KeyReuseError:
                detail = f"this {HEADER} was already used with a different request (method, path, query or body)"
                return self._key_problem(request, 422, "idempotency-key-reused", detail)
            except ResultNotStoredError as exc:  # a malformed record (not written by this library)
                return problem(request, 500, "idempotency-result-unavailable", str(exc))
            except StoreConfigurationError:  # logged at ERROR by the guard, with the table, region and fix
                return _store_misconfigured(request)
            except StoreUnavailableError as exc:
                return self._store_unavailable(request, exc)
            break
        if started is None:
            return self._run_unguarded(request, run)
        if isinstance(started, Record):
            try:
                return mark_replayed(self.guard.replay(started), request)
            except ResultNotStoredError as exc:
                return problem(request, 500, "idempotency-result-unavailable", str(exc))
            except (StoreConfigurationError, StoreUnavailableError) as exc:  # S3 or KMS, reading an offloaded or
                return self._store_failed(request, exc)  # encrypted response: its bucket or key denied, or unreachable
        return self._run_execution(request, started, context, run)

    def _store_unavailable(self, request: HttpRequest, error: StoreUnavailableError) -> ProxyResponse:
        logger.error("idempotency store unavailable for %s: %s", self.guard.operation, error)
        return problem(request, 503, "store-unavailable", "the idempotency store is unreachable", retry_after=1)

    def _await_change(self, claim: _Claim, deadline: float) -> bool:
        """Poll the record (consistent reads, backoff) until it is no longer a live claim; False once out of time."""
        rid = self.guard.record_id_of(normalise_scope(claim.scope), claim.key)
        delay = FIRST_POLL_S
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(delay, left))
            delay = min(delay * 2, MAX_POLL_S)
            found = self.guard.store.get(rid)
            now = self.guard.clock()
            if found is None or found.status is not Status.IN_PROGRESS or not found.lease_is_live(int(now * 1000)):
                return True
        return False

    def _run_execution(
        self, request: HttpRequest, execution: Execution, context: Any, run: Callable[[], Any]
    ) -> ProxyResponse:
        tokens = running.enter(execution, context)
        try:
            response = proxy_response(run(), request)
        except RequestValidationError as exc:
            return self._released(request, execution) or _invalid(request, exc)
        except LeaseLostError as exc:  # a step, write or heartbeat found the key taken over
            self.guard.abort(execution, exc)
            return self._taken_over(request)
        except (StoreConfigurationError, StoreUnavailableError) as exc:  # a step's save: the key is released
            try:
                self.guard.abort(execution, exc)
            except StoreConfigurationError:  # the release found the table gone or denied too (logged by the guard)
                return _store_misconfigured(request)
            return self._store_failed(request, exc)
        except BaseException as error:
            self.guard.abort(execution, error)
            raise
        finally:
            running.leave(tokens)
        if response["statusCode"] >= 500 or response["statusCode"] in RETRY_STATUSES:
            return self._released(request, execution) or response
        try:
            self.guard.finish(execution, response)
        except LeaseLostError:  # a renewal found the key taken over: this run's response is not the stored one
            return self._taken_over(request)
        except StoreConfigurationError:  # logged at ERROR by the guard, with the table, region and fix
            return _store_misconfigured(request)
        except StoreUnavailableError as exc:  # the commit of its writes did not land
            return self._store_unavailable(request, exc)
        return response

    def _released(self, request: HttpRequest, execution: Execution) -> ProxyResponse | None:
        """Give the key back (a retry runs again); None, or a 500 ``store-misconfigured`` when the table went missing
        or was denied while the handler ran (logged at ERROR by the guard)."""
        try:
            self.guard.release(execution)
        except StoreConfigurationError:
            return _store_misconfigured(request)
        return None

    def _store_failed(
        self, request: HttpRequest, error: StoreConfigurationError | StoreUnavailableError
    ) -> ProxyResponse:
        """A store call during the run or its commit failed: 500 when misconfigured (logged here, with the table,
        region and fix), else 503 with ``Retry-After`` (the key is released, or held until its lease ends)."""
        if isinstance(error, StoreConfigurationError):
            logger.error("idempotency store misconfigured for %s: %s", self.guard.operation, error)
            return _store_misconfigured(request)
        return self._store_unavailable(request, error)

    def _taken_over(self, request: HttpRequest) -> ProxyResponse:
        """409: this run lost its lease before it completed (it stalled past it, and another execution may have taken
        the key over); nothing of it is stored, so the client's retry replays that execution's response or runs."""
        detail = f"this request lost its hold on the {HEADER} before it completed; retry to get the outcome"
        return self._key_problem(request, 409, "idempotency-key-in-use", detail, retry_after=1)

    def _run_unguarded(self, request: HttpRequest, run: Callable[[], Any]) -> ProxyResponse:
        try:
            return proxy_response(run(), request)
        except RequestValidationError as exc:
            return _invalid(request, exc)


def idempotent_http(store: Store, *, operation: str, **options: Unpack[HttpOptions]) -> Callable[[F], F]:
    """Make a Lambda handler ``(event, context) -> proxy response`` idempotent under ``Idempotency-Key``."""
    rules = HttpIdempotency(store, operation=operation, **options)

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def handler(event: dict[str, Any], context: Any) -> ProxyResponse:
            return rules.handle(event, context, lambda: fn(event, context))

        handler.idempotency = rules.guard  # type: ignore[attr-defined]
        return handler  # type: ignore[return-value]

    return decorate


def _store_misconfigured(request: HttpRequest) -> ProxyResponse:
    """500, no ``Retry-After``: a retry cannot help. The table, region and fix go to the log, not to the caller."""
    detail = "the idempotency store is misconfigured; a retry cannot succeed until it is fixed"
    return problem(request, 500, "store-misconfigured", detail)


def _invalid(request: HttpRequest, error: RequestValidationError) -> ProxyResponse:
    return problem(request, 400, "request-invalid", error.detail, errors=error.errors)
