"""tools/local_api.py in-process: the template it reads, the v2 events it builds, the HTTP it answers."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from tools.local_api import LocalApi, http_response, rule_path
from tools.sam_template import Route, TemplateError, load_template

TEMPLATE = Path(__file__).parent / "local_api" / "template.yaml"


def test_template_functions_routes_environment_and_tables() -> None:
    template = load_template(TEMPLATE, parameters={"LogLevel": "DEBUG"}, names={"ChargesTable": "charges-1"})
    functions = {f.logical_id: f for f in template.functions}
    payment = functions["PaymentFunction"]
    assert payment.routes == [Route("POST", "/payments"), Route("GET", "/payments/{id}")]
    assert payment.handler == "app.lambda_handler"
    assert payment.code_dir == (TEMPLATE.parent / "payment").resolve()
    assert payment.timeout_s == 10 and payment.memory_mb == 256
    assert payment.environment == {
        "IDEMPOTENCY_TABLE": "IdempotencyTable",
        "LOG_LEVEL": "DEBUG",
        "CHARGES_TABLE": "charges-1",
        "SERVICE_LABEL": "us-east-1-payments",
    }
    assert functions["EchoFunction"].routes == [Route("ANY", "/echo/{proxy+}")]
    assert functions["EchoFunction"].timeout_s == 5
    assert {t.name for t in template.tables} == {"IdempotencyTable", "charges-1"}


def test_a_function_without_handler_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text("Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: f/\n")
    with pytest.raises(TemplateError, match="F needs Handler"):
        load_template(path)


@pytest.mark.parametrize(
    ("path", "rule"),
    [("/payments", "/payments"), ("/payments/{id}", "/payments/<id>"), ("/a/{x}/b/{rest+}", "/a/<x>/b/<path:rest>")],
)
def test_rule_paths(path: str, rule: str) -> None:
    assert rule_path(path) == rule


@pytest.fixture
def api() -> Client:
    return Client(LocalApi(load_template(TEMPLATE), principal="alice"))


def echo(client: Client, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    response = client.open(path, method=method, **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)
    data: dict[str, Any] = json.loads(response.get_data())
    return data


def test_request_becomes_the_http_api_v2_event(api: Client) -> None:
    api.set_cookie("s", "1")
    api.set_cookie("t", "2")
    got = echo(
        api,
        "POST",
        "/echo/a/b?x=1&x=2&y=z",
        data=b'{"amount": 1}',
        headers=[("Idempotency-Key", "k1"), ("X-Twice", "1"), ("X-Twice", "2")],
    )
    event = got["event"]
    assert event["version"] == "2.0" and event["routeKey"] == "ANY /echo/{proxy+}"
    assert event["rawPath"] == "/echo/a/b" and event["rawQueryString"] == "x=1&x=2&y=z"
    assert event["queryStringParameters"] == {"x": "1,2", "y": "z"}
    assert event["pathParameters"] == {"proxy": "a/b"}
    assert event["headers"]["idempotency-key"] == "k1" and event["headers"]["x-twice"] == "1, 2"
    assert event["cookies"] == ["s=1", "t=2"] and "cookie" not in event["headers"]
    assert event["body"] == '{"amount": 1}' and event["isBase64Encoded"] is False
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] == "alice"
    assert 0 < got["remaining_ms"] <= 5000


def test_binary_body_is_base64_and_no_auth_sends_no_authorizer() -> None:
    client = Client(LocalApi(load_template(TEMPLATE), principal=None))
    event = echo(client, "PUT", "/echo/file", data=b"\xff\x00\xfe")["event"]
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == b"\xff\x00\xfe"
    assert "authorizer" not in event["requestContext"]


def test_unknown_route_and_method_are_404(api: Client) -> None:
    assert api.get("/nowhere").status_code == 404
    assert api.delete("/payments").status_code == 404


def test_responses_map_status_headers_cookies_and_base64_bodies(api: Client) -> None:
    described = {
        "statusCode": 202,
        "headers": {"X-One": "1"},
        "multiValueHeaders": {"X-Many": ["a", "b"]},
        "cookies": ["s=1; Secure", "t=2"],
        "body": base64.b64encode(b"\x00bin").decode(),
        "isBase64Encoded": True,
    }
    response = api.post("/echo/respond", data=json.dumps(described))
    assert response.status_code == 202
    assert response.headers["X-One"] == "1" and response.headers.getlist("X-Many") == ["a", "b"]
    assert response.headers.getlist("Set-Cookie") == ["s=1; Secure", "t=2"]
    assert response.get_data() == b"\x00bin"


def test_inferred_and_failing_results() -> None:
    inferred = http_response({"id": 1})
    assert inferred.status_code == 200 and json.loads(inferred.get_data()) == {"id": 1}
    assert inferred.headers["Content-Type"] == "application/json"
    assert http_response("plain").get_data() == b"plain"


def test_a_failing_function_is_500(api: Client) -> None:
    response = api.post("/echo/respond", data="not json")
    assert response.status_code == 500 and response.get_json() == {"message": "Internal Server Error"}


def test_in_process_each_function_imports_under_its_own_environment(tmp_path: Path) -> None:
    """Issue 12: `make serve` in one process tagged the payment function's metrics ``service: email``. What a
    module reads at import (Powertools' service name) is now its own function's value."""
    functions = ""
    for name in ("payment", "email"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "app.py").write_text(
            "import os\nSERVICE = os.environ['POWERTOOLS_SERVICE_NAME']\n\n"
            "def handler(event, context):\n    return {'service': SERVICE}\n"
        )
        functions += (
            f"  {name.title()}Function:\n    Type: AWS::Serverless::Function\n    Properties:\n"
            f"      CodeUri: {name}/\n      Handler: app.handler\n"
            f"      Environment:\n        Variables:\n          POWERTOOLS_SERVICE_NAME: {name}\n"
            f"      Events:\n        Get:\n          Type: HttpApi\n          Properties:\n"
            f"            Path: /{name}\n            Method: GET\n"
        )
    (tmp_path / "template.yaml").write_text("Resources:\n" + functions)
    client = Client(LocalApi(load_template(tmp_path / "template.yaml")))
    assert client.get("/payment").get_json() == {"service": "payment"}
    assert client.get("/email").get_json() == {"service": "email"}
    assert client.get("/payment").get_json() == {"service": "payment"}
