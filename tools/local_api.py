"""Serve a SAM template's HttpApi functions on 127.0.0.1, with no Docker: ``make serve``, then ``curl``.

Each HTTP request becomes the API Gateway HTTP API (payload 2.0) event SAM would send: route key and path
parameters, lower-cased headers (WSGI joins repeats with ", "), cookies, query string, body (base64 when it is not
UTF-8 text) and a request context whose JWT authorizer names a configurable principal. The handler's result goes
back as HTTP: its status, headers, cookies and body, or a 200 JSON body for the inferred form.

By default the functions run on the local Lambda runtime (`tools.runtime_pool`: AWS's Runtime Interface Emulator
and awslambdaric, from `sam build`'s output, one sandbox per concurrent request, each with its own environment).
``--in-process`` runs them in this process instead, for speed: one module per function, imported on its first
request with its template environment applied to ``os.environ`` (see `InProcess` for what that shares).
``--embedded-dynamodb`` starts moto's server and creates the template's tables and queues in it, so the functions
have AWS without an account; each SQS event source then polls its queue and invokes its function with batches.
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import json
import logging
import os
import signal
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tools.runtime_pool import BUILD_DIR, LocalRuntime
from tools.sam_template import Function, Route, Template, load_template
from tools.sqs_source import SqsPoller

logger = logging.getLogger("local_api")

DEFAULT_PRINCIPAL = "local-user"


def rule_path(path: str) -> str:
    """``/payments/{id}`` -> ``/payments/<id>``; a greedy ``{proxy+}`` takes the rest of the path."""
    out, rest = "", path
    while "{" in rest:
        before, _, after = rest.partition("{")
        name, _, rest = after.partition("}")
        out += before + (f"<path:{name[:-1]}>" if name.endswith("+") else f"<{name}>")
    return out + rest


@dataclass
class LambdaContext:
    """The parts of Lambda's context object handlers use; the deadline follows the function's Timeout."""

    function_name: str
    memory_limit_in_mb: int
    aws_request_id: str
    deadline: float

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


_IMPORT_LOCK = threading.Lock()


class LoadedFunction:
    """One template function: its handler, imported on first use like a Lambda cold start."""

    def __init__(self, function: Function) -> None:
        self.spec = function
        self._handler: Callable[[dict[str, Any], Any], Any] | None = None

    def handler(self) -> Callable[[dict[str, Any], Any], Any]:
        with _IMPORT_LOCK:
            if self._handler is None:
                os.environ.update(self.spec.environment)
                module_name, _, attribute = self.spec.handler.rpartition(".")
                source = self.spec.code_dir / (module_name.replace(".", "/") + ".py")
                if str(self.spec.code_dir) not in sys.path:
                    sys.path.insert(0, str(self.spec.code_dir))
                spec = importlib.util.spec_from_file_location(f"_local_api_{self.spec.logical_id}", source)
                if spec is None or spec.loader is None:
                    raise FileNotFoundError(f"{self.spec.logical_id}: no module at {source}")
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                self._handler = getattr(module, attribute)
            return self._handler

    def invoke(self, event: dict[str, Any]) -> Any:
        context = LambdaContext(
            function_name=self.spec.logical_id,
            memory_limit_in_mb=self.spec.memory_mb,
            aws_request_id=str(uuid.uuid4()),
            deadline=time.monotonic() + self.spec.timeout_s,
        )
        return self.handler()(event, context)


class InProcess:
    """``--in-process``: every function in this process, for speed.

    Each function's module is imported with its own environment applied to ``os.environ`` (under one lock), so what
    a module reads at import (Powertools' service name, its tables) is its own. They still share one ``os.environ``:
    a variable read during an invocation sees the value of the function imported last. A clash is logged; the
    default runtime (RIE) gives each function its own process and environment.
    """

    def __init__(self, template: Template) -> None:
        self.functions = {f.logical_id: LoadedFunction(f) for f in template.functions}
        _report_clashes(template.functions)

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        return self.functions[logical_id].invoke(event)


class Invoker(Protocol):
    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any: ...


class LocalApi:
    """The WSGI application: route, build the v2 event, invoke, turn the result into HTTP."""

    def __init__(
        self, template: Template, *, principal: str | None = DEFAULT_PRINCIPAL, invoker: Invoker | None = None
    ) -> None:
        self.principal = principal
        self.invoker = invoker if invoker is not None else InProcess(template)
        self.functions = template.functions
        rules = [
            Rule(
                rule_path(route.path),
                methods=None if route.method == "ANY" else [route.method],
                endpoint=(function.logical_id, route),
            )
            for function in self.functions
            for route in function.routes
        ]
        self.url_map = Map(rules, strict_slashes=False, merge_slashes=False)

    def routes(self) -> list[str]:
        return [route.route_key for f in self.functions for route in f.routes]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        try:
            (logical_id, route), arguments = self.url_map.bind_to_environ(environ).match()
        except (NotFound, MethodNotAllowed):
            return _json(404, {"message": "Not Found"})(environ, start_response)
        except HTTPException as exc:
            return exc(environ, start_response)
        event = self.event(request, route, arguments)
        try:
            result = self.invoker.invoke(logical_id, event)
        except Exception:
            logger.error("%s failed:\n%s", logical_id, traceback.format_exc())
            return _json(500, {"message": "Internal Server Error"})(environ, start_response)
        return http_response(result)(environ, start_response)

    def event(self, request: Request, route: Route, arguments: dict[str, str]) -> dict[str, Any]:
        """The payload-2.0 event API Gateway would send for this request."""
        headers = {name.lower(): value for name, value in request.headers.items()}
        cookies = headers.pop("cookie", None)
        raw = request.get_data()
        try:
            body, encoded = raw.decode("utf-8"), False
        except UnicodeDecodeError:
            body, encoded = base64.b64encode(raw).decode(), True
        now = time.time()
        context: dict[str, Any] = {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": request.host,
            "domainPrefix": request.host.split(".")[0],
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
                "sourceIp": request.remote_addr or "127.0.0.1",
                "userAgent": request.user_agent.string,
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route.route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        }
        if self.principal is not None:
            context["authorizer"] = {"jwt": {"claims": {"sub": self.principal, "iss": "local"}, "scopes": []}}
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route.route_key,
            "rawPath": request.path,
            "rawQueryString": request.query_string.decode("latin-1"),
            "headers": headers,
            "requestContext": context,
            "isBase64Encoded": encoded,
        }
        if cookies:
            event["cookies"] = [c.strip() for c in cookies.split(";")]
        if request.args:
            event["queryStringParameters"] = {k: ",".join(request.args.getlist(k)) for k in request.args}
        if arguments:
            event["pathParameters"] = dict(arguments)
        if raw:
            event["body"] = body
        return event


def http_response(result: Any) -> Response:
    """A handler's result as HTTP, the way API Gateway reads payload-2.0 responses."""
    if not (isinstance(result, dict) and "statusCode" in result):
        return (
            _json(200, result)
            if not isinstance(result, str)
            else Response(result, 200, {"Content-Type": "application/json"})
        )
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    response = Response(data, status=int(result["statusCode"]))
    response.headers.pop("Content-Type", None)
    for name, value in (result.get("headers") or {}).items():
        response.headers[name] = str(value)
    for name, values in (result.get("multiValueHeaders") or {}).items():
        for value in values:
            response.headers.add(name, str(value))
    for cookie in result.get("cookies") or []:
        response.headers.add("Set-Cookie", cookie)
    return response


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body), status, {"Content-Type": "application/json"})


def _report_clashes(functions: list[Function]) -> None:
    """In-process functions share os.environ after their imports: a variable they set differently is reported."""
    seen: dict[str, tuple[str, str]] = {}
    for function in functions:
        for name, value in function.environment.items():
            if name in seen and seen[name][1] != value:
                logger.warning(
                    "in-process: %s sets %s=%r, %s set %r: during invocations, the function imported last wins",
                    function.logical_id,
                    name,
                    value,
                    *seen[name],
                )
            seen[name] = (function.logical_id, value)


@contextmanager
def embedded_aws(template: Template) -> Iterator[dict[str, str]]:
    """moto's server on 127.0.0.1 with the template's tables and queues; yields the queues' URLs.

    This process and the functions find it through ``AWS_ENDPOINT_URL`` (set here, with fake credentials).
    """
    from lambda_idempotency.testing import moto_server

    from tools.local_aws import create_resources

    for name, value in {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with moto_server() as endpoint:
        os.environ["AWS_ENDPOINT_URL"] = os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint
        queues = create_resources(template, endpoint)
        logger.info("embedded AWS (moto) at %s", endpoint)
        yield queues


def _env_vars(path: str | None) -> dict[str, dict[str, str]]:
    """SAM CLI's ``--env-vars`` file: ``{"Parameters": {...for every function}, "<FunctionId>": {...}}``.

    As in SAM CLI, a value only replaces a variable the function declares in the template.
    """
    if path is None:
        return {}
    data = json.loads(Path(path).read_text())
    return {scope: {k: str(v) for k, v in values.items()} for scope, values in data.items()}


def _parameter_overrides(pairs: list[str]) -> dict[str, str]:
    overrides = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
    if len(overrides) != len(pairs):
        raise SystemExit("--parameter-overrides takes Name=Value pairs")
    return overrides


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--template", default="template.yaml", type=Path)
    parser.add_argument("--port", type=int, default=3000, help="0 picks a free port")
    parser.add_argument("--env-vars", help="JSON file in SAM CLI's --env-vars format")
    parser.add_argument("--parameter-overrides", nargs="*", default=[], metavar="NAME=VALUE")
    parser.add_argument("--principal", default=DEFAULT_PRINCIPAL, help="JWT sub of every request")
    parser.add_argument("--no-auth", action="store_true", help="send requests without an authorizer")
    parser.add_argument("--embedded-dynamodb", action="store_true", help="run moto's server with the tables, queues")
    parser.add_argument("--in-process", action="store_true", help="run the functions in this process (faster)")
    parser.add_argument("--build-dir", type=Path, default=BUILD_DIR, help="sam build's output (default runtime)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    signal.signal(signal.SIGTERM, _exit)  # so that `finally` stops every sandbox and server this process started

    template = load_template(args.template, parameters=_parameter_overrides(args.parameter_overrides))
    env_vars = _env_vars(args.env_vars)
    for function in template.functions:
        function.apply_env_vars(env_vars)
    with ExitStack() as stack:
        queues = stack.enter_context(embedded_aws(template)) if args.embedded_dynamodb else {}
        invoker: Invoker = (
            InProcess(template)
            if args.in_process
            else stack.enter_context(LocalRuntime(template, build_dir=args.build_dir, echo=_echo))
        )
        for poller in _sqs_pollers(template, queues, invoker):
            stack.callback(poller.start().stop)
            print(f"Polling {poller.source.queue} ({poller.queue_url}) for {poller.function_id}", flush=True)
        app = LocalApi(template, principal=None if args.no_auth else args.principal, invoker=invoker)
        server = make_server("127.0.0.1", args.port, app, threaded=True)
        mode = "in this process" if args.in_process else "on the Lambda runtime (RIE)"
        print(f"Serving {', '.join(app.routes())} {mode} on http://127.0.0.1:{server.server_port}", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()


def _sqs_pollers(template: Template, queues: dict[str, str], invoker: Invoker) -> list[SqsPoller]:
    """An event source mapping per SQS event of a function whose queue exists locally."""
    import boto3

    sqs = boto3.client("sqs")
    return [
        SqsPoller(sqs, queues[source.queue], source, function.logical_id, invoker.invoke)
        for function in template.functions
        for source in function.sqs_sources
        if source.queue in queues
    ]


def _exit(*_: object) -> None:
    raise SystemExit(0)


def _echo(line: str) -> None:
    print(line, flush=True)


if __name__ == "__main__":
    main()
