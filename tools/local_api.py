"""Serve a SAM template's HttpApi functions on 127.0.0.1, with no Docker: ``make serve``, then ``curl``.

Each HTTP request becomes the API Gateway HTTP API (payload 2.0) event SAM would send: route key and path
parameters, lower-cased headers (WSGI joins repeats with ", "), cookies, query string, body (base64 when it is not
UTF-8 text) and a request context whose JWT authorizer names a configurable principal. The handler's result goes
back as HTTP: its status, headers, cookies and body, or a 200 JSON body for the inferred form.

Functions run in this process, one module per function, imported on their first request (a cold start) with
their template environment applied to ``os.environ``. ``--embedded-dynamodb`` starts moto's DynamoDB server
and creates the template's tables in it, so the functions have a DynamoDB without an AWS account.
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tools.sam_template import Function, Route, Template, load_template

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


class LoadedFunction:
    """One template function: its handler, imported on first use like a Lambda cold start."""

    def __init__(self, function: Function) -> None:
        self.spec = function
        self._handler: Callable[[dict[str, Any], Any], Any] | None = None
        self._lock = threading.Lock()

    def handler(self) -> Callable[[dict[str, Any], Any], Any]:
        with self._lock:
            if self._handler is None:
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


class LocalApi:
    """The WSGI application: route, build the v2 event, invoke, turn the result into HTTP."""

    def __init__(self, template: Template, *, principal: str | None = DEFAULT_PRINCIPAL) -> None:
        self.principal = principal
        self.functions = [LoadedFunction(f) for f in template.functions]
        rules = [
            Rule(
                rule_path(route.path),
                methods=None if route.method == "ANY" else [route.method],
                endpoint=(function, route),
            )
            for function in self.functions
            for route in function.spec.routes
        ]
        self.url_map = Map(rules, strict_slashes=False, merge_slashes=False)
        _apply_environment(template.functions)

    def routes(self) -> list[str]:
        return [route.route_key for f in self.functions for route in f.spec.routes]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        try:
            (function, route), arguments = self.url_map.bind_to_environ(environ).match()
        except (NotFound, MethodNotAllowed):
            return _json(404, {"message": "Not Found"})(environ, start_response)
        except HTTPException as exc:
            return exc(environ, start_response)
        event = self.event(request, route, arguments)
        try:
            result = function.invoke(event)
        except Exception:
            logger.error("%s failed:\n%s", function.spec.logical_id, traceback.format_exc())
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


def _apply_environment(functions: list[Function]) -> None:
    """Functions share this process, so their environments share os.environ: a clash is reported, not hidden.

    Give every function the same value for a variable they share (``"Parameters"`` of ``--env-vars``).
    """
    seen: dict[str, tuple[str, str]] = {}
    for function in functions:
        for name, value in function.environment.items():
            if name in seen and seen[name][1] != value:
                logger.warning("%s sets %s=%r, %s set %r: the last wins", function.logical_id, name, value, *seen[name])
            seen[name] = (function.logical_id, value)
            os.environ[name] = value


@contextmanager
def embedded_dynamodb(template_path: Path, parameters: dict[str, str]) -> Iterator[None]:
    """moto's DynamoDB server on 127.0.0.1, with the template's tables, for this process's AWS calls."""
    import boto3
    from lambda_idempotency.stores.dynamodb import TTL_ATTRIBUTE
    from lambda_idempotency.testing import moto_server

    for name, value in {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with moto_server() as endpoint:
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint
        client = boto3.client("dynamodb")
        for table in load_template(template_path, parameters=parameters).tables:
            client.create_table(
                TableName=table.name,
                KeySchema=table.key_schema,
                AttributeDefinitions=table.attribute_definitions,
                BillingMode="PAY_PER_REQUEST",
            )
            client.update_time_to_live(
                TableName=table.name, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
            )
        logger.info("embedded DynamoDB at %s", endpoint)
        yield


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
    parser.add_argument("--embedded-dynamodb", action="store_true", help="run moto's DynamoDB with the tables")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    parameters = _parameter_overrides(args.parameter_overrides)
    overrides = _env_vars(args.env_vars)
    with ExitStack() as stack:
        if args.embedded_dynamodb:
            stack.enter_context(embedded_dynamodb(args.template, parameters))
        template = load_template(args.template, parameters=parameters)
        for function in template.functions:
            for scope in ("Parameters", function.logical_id):
                declared = overrides.get(scope, {}).items()
                function.environment.update({k: v for k, v in declared if k in function.environment})
        app = LocalApi(template, principal=None if args.no_auth else args.principal)
        server = make_server("127.0.0.1", args.port, app, threaded=True)
        print(f"Serving {', '.join(app.routes())} on http://127.0.0.1:{server.server_port}", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()


if __name__ == "__main__":
    main()
