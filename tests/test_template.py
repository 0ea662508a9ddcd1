"""template.yaml: the checks `sam deploy` would make (cfn-lint, sam validate --lint, sam build), run offline,
and the properties the issue asks of it, read from the template itself."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from lambda_idempotency.stores.dynamodb import TTL_ATTRIBUTE, table_definition

from demo.stack import LambdaContext, LocalStack
from demo.story import EVENTS, load_event
from demo.template import ROOT, create_table_request, load_template, resources_of
from tests.sam_cli import SAM_BIN, sam_tool

TEMPLATE = load_template()
FUNCTIONS = resources_of(TEMPLATE, "AWS::Serverless::Function")


def test_cfn_lint_passes() -> None:
    result = sam_tool("cfn-lint", "template.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_sam_validate_lint_passes() -> None:
    result = sam_tool("sam", "validate", "--lint", "--region", "us-east-1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_sam_build_packs_the_layer_and_the_handlers(sam_build: Path) -> None:
    layer = sam_build / "IdempotencyLayer" / "python"
    assert (layer / "lambda_idempotency" / "batch.py").is_file()
    assert (layer / "aws_lambda_powertools" / "__init__.py").is_file()
    assert (layer / "aws_encryption_sdk" / "__init__.py").is_file(), "IdempotencyKmsKeyArn needs the [encryption] extra"
    assert not (layer / "boto3").exists(), "boto3 is in the Lambda runtime; the layer must not ship it"
    sources = sorted((layer / "lambda_idempotency").rglob("*.py"))
    for source in sources:
        compiled = source.parent / "__pycache__" / f"{source.stem}.cpython-312.pyc"
        assert compiled.is_file(), f"{source.name} ships without bytecode: every cold start would compile it"
        flags = int.from_bytes(compiled.read_bytes()[4:8], "little")
        assert flags == 0b01, f"{compiled.name} must be checked by hash, never against the zip's mtimes"
    for logical_id in FUNCTIONS:
        assert (sam_build / logical_id / "app.py").is_file()


def test_the_layer_declares_the_one_architecture_its_compiled_wheels_run_on() -> None:
    """The layer ships compiled extensions (cryptography, cffi and wrapt for the [encryption] extra: *.so files built
    for x86_64 Linux): without CompatibleArchitectures, Lambda lets an arm64 function add the layer, and its first
    encrypted payload fails to import. The layer names the architecture it is built for, and every function uses it."""
    layer = TEMPLATE["Resources"]["IdempotencyLayer"]
    built_for = layer["Metadata"]["BuildArchitecture"]
    assert layer["Properties"].get("CompatibleArchitectures") == [built_for]
    default = TEMPLATE["Globals"]["Function"].get("Architectures", ["x86_64"])
    for logical_id, function in FUNCTIONS.items():
        assert function["Properties"].get("Architectures", default) == [built_for], logical_id


def test_the_layer_is_built_from_wheels_for_lambdas_machine_not_the_builders() -> None:
    """pip installs wheels for the machine it runs on: `sam build` on a Mac (or an arm64 host) would pack compiled
    extensions Lambda cannot load. The layer's Makefile asks for the template's runtime and architecture instead."""
    layer = TEMPLATE["Resources"]["IdempotencyLayer"]
    arch = layer["Metadata"]["BuildArchitecture"]
    (runtime,) = layer["Properties"]["CompatibleRuntimes"]
    makefile = (ROOT / "layers" / "idempotency" / "Makefile").read_text()
    wheels = f"--platform manylinux2014_{arch} --implementation cp --python-version {runtime.removeprefix('python')}"
    assert f"LAMBDA_WHEELS := {wheels} --only-binary=:all:" in makefile
    (pip,) = [line for line in makefile.splitlines() if line.startswith("PIP := ")]
    assert " -m pip install " in pip and pip.endswith(" $(LAMBDA_WHEELS)")
    recipe = makefile.split("build-IdempotencyLayer:", 1)[1]
    assert recipe.count("$(PIP) ") == 2 and "pip install" not in recipe  # both installs, and only through it


def test_a_function_that_reads_offloaded_payloads_may_list_the_bucket() -> None:
    """S3 answers a GetObject of a missing key with 404 NoSuchKey only to a caller allowed s3:ListBucket on the bucket;
    to any other it answers 403 AccessDenied (AWS's GetObject reference). S3Offload reads NoSuchKey as the documented
    `ResultUnreadableError` (500 idempotency-result-unavailable) and AccessDenied as a denied bucket
    (`StoreConfigurationError`, 500 store-misconfigured, logged as a misconfiguration): so a function that reads
    offloaded payloads from the results bucket is allowed to list it."""
    bucket = {"Fn::GetAtt": ["IdempotencyResultsBucket", "Arn"]}
    readers = 0
    for logical_id in FUNCTIONS:
        statements = _statements(logical_id)
        reads = any(
            "s3:GetObject" in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
            and "IdempotencyResultsBucket" in json.dumps(s["Resource"])
            for s in statements
        )
        if not reads:
            continue
        readers += 1
        lists = [
            s
            for s in statements
            if "s3:ListBucket" in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
        ]
        assert [s["Resource"] for s in lists] == [bucket], logical_id
    assert readers, "the payment function reads offloaded responses"


def test_the_idempotency_table_is_the_shape_create_table_makes() -> None:
    properties = TEMPLATE["Resources"]["IdempotencyTable"]["Properties"]
    assert create_table_request(properties, "t") == table_definition("t")
    assert properties["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    with_key = {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": {"Ref": "IdempotencyKmsKeyArn"}}
    assert properties["SSESpecification"] == {"Fn::If": ["HasIdempotencyKey", with_key, {"SSEEnabled": True}]}
    assert properties["DeletionProtectionEnabled"] == {"Fn::If": ["ProtectTables", True, False]}


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_handlers_and_environment_match_the_code(logical_id: str) -> None:
    """What `sam local invoke` needs: the handler exists, and every variable the code reads is set."""
    properties = FUNCTIONS[logical_id]["Properties"]
    folder = ROOT / properties["CodeUri"]
    module, function = properties["Handler"].split(".")
    tree = ast.parse((folder / f"{module}.py").read_text())
    assert function in {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    globals_env = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    declared = {*globals_env, *properties["Environment"]["Variables"]}
    read = {
        name for source in folder.glob("*.py") for name in re.findall(r'os\.environ\["(\w+)"\]', source.read_text())
    }
    assert read, "the function reads its resources from the environment"
    assert read <= declared


def _statements(logical_id: str) -> list[dict[str, Any]]:
    return [s for policy in FUNCTIONS[logical_id]["Properties"]["Policies"] for s in policy["Statement"]]


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_least_privilege(logical_id: str) -> None:
    for statement in _statements(logical_id):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in action for action in actions), statement
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        assert all(isinstance(resource, dict) for resource in resources), f"literal resource in {statement}"


def test_functions_get_only_the_dynamodb_calls_the_store_makes() -> None:
    store_source = (ROOT / "layers/idempotency/lambda_idempotency/stores/dynamodb.py").read_text()
    calls = set(re.findall(r'"(get_item|update_item|delete_item|put_item|transact_write_items)"', store_source))
    calls |= set(re.findall(r"client\.(get_item|update_item|delete_item|put_item)\(", store_source))
    needed = {"dynamodb:" + "".join(part.title() for part in call.split("_")) for call in calls}
    for logical_id in FUNCTIONS:
        granted = {a for s in _statements(logical_id) if s["Sid"] == "IdempotencyRecords" for a in s["Action"]}
        assert granted == needed


TRANSACTION_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
"""IAM authorises each action of a TransactWriteItems as the single-item call it stands for."""


def _granted(logical_id: str) -> set[tuple[str, str]]:
    """(IAM action, table logical id) pairs a function's policies allow."""
    return {
        (action, resource["Fn::GetAtt"][0])
        for statement in _statements(logical_id)
        for action in (statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
        for resource in (statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]])
        if action.startswith("dynamodb:") and "Fn::GetAtt" in resource
    }


@pytest.mark.usefixtures("restore_environment")
def test_the_payment_function_is_granted_the_calls_it_makes_and_no_other_on_its_tables(moto_endpoint: str) -> None:
    """Every documented request, a failed charge and a retry after an error, recorded call by call (a transaction
    counted per action): each call is granted, and the business tables are granted nothing it never calls."""
    stack = LocalStack.create(dynamodb_endpoint=moto_endpoint, aws_endpoint=moto_endpoint)
    tables = {name: logical_id for logical_id, name in stack.names.items()}
    made: set[tuple[str, str]] = set()

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "TransactWriteItems":
            for item in params["TransactItems"]:
                ((kind, action),) = item.items()
                made.add((f"dynamodb:{TRANSACTION_ACTIONS[kind]}", tables[action["TableName"]]))
        else:
            made.add((f"dynamodb:{model.name}", tables[params["TableName"]]))

    def declined(**_: Any) -> Any:
        raise RuntimeError("the gateway is down")

    payment = stack.load_function("PaymentFunction")
    payment.store.client.meta.events.register("before-parameter-build.dynamodb", record)
    charge = payment.provider.charge
    payment.provider.charge = declined
    with pytest.raises(RuntimeError):
        payment.handler(load_event("payment-create.json"), LambdaContext("PaymentFunction"))
    payment.provider.charge = charge
    for name in sorted(p.name for p in EVENTS.glob("payment-*.json")):
        payment.handler(load_event(name), LambdaContext("PaymentFunction"))

    granted = _granted("PaymentFunction")
    assert made - granted == set()
    business = {"PaymentsTable", "GatewayChargesTable"}
    assert {g for g in granted if g[1] in business} == {m for m in made if m[1] in business}
    assert ("dynamodb:DeleteItem", "IdempotencyTable") in made  # the failed charge released its key


def test_queue_timeouts_and_redrive_fit_the_function() -> None:
    queue = TEMPLATE["Resources"]["EmailQueue"]["Properties"]
    timeout = FUNCTIONS["EmailFunction"]["Properties"].get("Timeout", TEMPLATE["Globals"]["Function"]["Timeout"])
    assert queue["VisibilityTimeout"] >= 6 * timeout
    # A duplicate in flight fails once and is back after the visibility timeout, when the lease has ended.
    assert queue["RedrivePolicy"]["maxReceiveCount"] >= 3
    events = FUNCTIONS["EmailFunction"]["Properties"]["Events"]
    assert events["Emails"]["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_outputs_name_the_api_queue_and_tables() -> None:
    assert {"ApiUrl", "EmailQueueUrl", "IdempotencyTableName", "PaymentsTableName"} <= set(TEMPLATE["Outputs"])


TRANSLATE = """
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

template = yaml_parse(open("template.yaml").read())
for resource in template["Resources"].values():  # the translator wants built artifacts: any S3 address will do
    for uri in ("CodeUri", "ContentUri"):
        if uri in resource.get("Properties", {}):
            resource["Properties"][uri] = "s3://bucket/key"


class NoManagedPolicies:
    def load(self):
        return {}


print(json.dumps(transform(template, json.loads(sys.argv[1]), NoManagedPolicies())))
"""


def _resolved(value: Any, conditions: dict[str, bool]) -> Any:
    """``value`` with Fn::If evaluated and AWS::NoValue dropped, as CloudFormation resolves it."""
    if isinstance(value, dict):
        if set(value) == {"Fn::If"}:
            name, if_true, if_false = value["Fn::If"]
            return _resolved(if_true if conditions[name] else if_false, conditions)
        resolved = {k: _resolved(v, conditions) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v != {"Ref": "AWS::NoValue"}}
    if isinstance(value, list):
        return [_resolved(v, conditions) for v in value]
    return value


@pytest.mark.parametrize("auth", ["IAM", "JWT", "NONE"])
def test_the_payment_api_authenticates_as_the_auth_parameter_says_and_throttles(auth: str) -> None:
    """SAM's own transform of the template (what CloudFormation deploys), with the conditions evaluated."""
    parameters = {"Auth": auth, "JwtIssuer": "https://issuer.example.com", "JwtAudience": "payments-client"}
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    result = subprocess.run(
        [str(SAM_BIN / "python"), "-c", TRANSLATE, json.dumps(parameters)],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    resources = json.loads(result.stdout)["Resources"]
    apis = {k: r for k, r in resources.items() if r["Type"] == "AWS::ApiGatewayV2::Api"}
    assert list(apis) == ["PaymentApi"], "one API; no implicit ServerlessHttpApi without the authorizer"
    conditions = {"AuthIsIam": auth == "IAM", "AuthIsJwt": auth == "JWT"}
    body = _resolved(apis["PaymentApi"]["Properties"]["Body"], conditions)
    operations = [op for path in body["paths"].values() for op in path.values() if isinstance(op, dict)]
    assert len(operations) == 2 and all("x-amazon-apigateway-integration" in op for op in operations)
    schemes = body["components"]["securitySchemes"]
    if auth == "IAM":
        assert all(op["security"] == [{"AWS_IAM": []}] for op in operations)
        assert schemes["AWS_IAM"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    elif auth == "JWT":
        assert all(op["security"] == [{"JwtAuthorizer": []}] for op in operations)
        jwt = schemes["JwtAuthorizer"]["x-amazon-apigateway-authorizer"]
        assert jwt["type"] == "jwt" and jwt["identitySource"] == "$request.header.Authorization"
        assert _resolved(jwt["jwtConfiguration"], conditions) == {
            "issuer": {"Ref": "JwtIssuer"},
            "audience": [{"Ref": "JwtAudience"}],
        }
    else:
        assert all("security" not in op for op in operations)
    (stage,) = [r for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Stage"]
    assert stage["Properties"]["DefaultRouteSettings"] == {
        "ThrottlingRateLimit": {"Ref": "ThrottlingRateLimit"},
        "ThrottlingBurstLimit": {"Ref": "ThrottlingBurstLimit"},
    }


def test_auth_defaults_to_iam_throttles_by_default_and_jwt_needs_issuer_and_audience() -> None:
    parameters = TEMPLATE["Parameters"]
    assert parameters["Auth"]["Default"] == "IAM" and parameters["Auth"]["AllowedValues"] == ["IAM", "JWT", "NONE"]
    assert 0 < parameters["ThrottlingRateLimit"]["Default"] <= parameters["ThrottlingBurstLimit"]["Default"] <= 100
    rule = TEMPLATE["Rules"]["JwtAuthNeedsIssuerAndAudience"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "Auth"}, "JWT"]}
    checked = {a["Assert"]["Fn::Not"][0]["Fn::Equals"][0]["Ref"] for a in rule["Assertions"]}
    assert checked == {"JwtIssuer", "JwtAudience"}
    environment = FUNCTIONS["PaymentFunction"]["Properties"]["Environment"]["Variables"]
    assert environment["API_AUTH"] == {"Ref": "Auth"}


def test_offloaded_results_expire_with_their_records_encrypted_with_the_kms_key() -> None:
    """The payment function's records live 24 h (functions/payment/app.py): its objects expire after 1 day."""
    bucket = TEMPLATE["Resources"]["IdempotencyResultsBucket"]["Properties"]
    (encryption,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    with_key, without = encryption["ServerSideEncryptionByDefault"]["Fn::If"][1:]
    assert with_key == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": {"Ref": "IdempotencyKmsKeyArn"}}
    assert without == {"SSEAlgorithm": "AES256"}
    rules = {rule.get("Prefix"): rule for rule in bucket["LifecycleConfiguration"]["Rules"]}
    app = (ROOT / "functions/payment/app.py").read_text()
    assert 'prefix="payment/"' in app
    assert "ttl=timedelta(hours=24)" in app
    assert rules["payment/"]["ExpirationInDays"] == 1
    payment = FUNCTIONS["PaymentFunction"]["Properties"]["Environment"]["Variables"]
    assert payment["RESULTS_BUCKET"] == {"Ref": "IdempotencyResultsBucket"}
    assert payment["IDEMPOTENCY_KMS_KEY_ARN"] == {"Ref": "IdempotencyKmsKeyArn"}
    granted = {s["Sid"]: s for s in _statements("PaymentFunction")}
    assert granted["IdempotencyResults"]["Resource"] == {"Fn::Sub": "${IdempotencyResultsBucket.Arn}/payment/*"}
    assert set(granted["IdempotencyEncryption"]["Action"]) == {"kms:GenerateDataKey", "kms:Decrypt"}


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_a_function_on_the_idempotency_table_may_decrypt_with_the_tables_kms_key(logical_id: str) -> None:
    """With IdempotencyKmsKeyArn the idempotency table is encrypted at rest with that customer managed key, and
    DynamoDB decrypts the table key as the caller: a principal not allowed kms:Decrypt on the key gets AccessDenied on
    every GetItem, PutItem, UpdateItem (AWS's DynamoDB AccessDeniedException troubleshooting names this cause). So every
    function that uses the table is allowed kms:Decrypt on the key when the parameter is given, and on nothing else."""
    statements = _statements(logical_id)
    table = {"Fn::GetAtt": ["IdempotencyTable", "Arn"]}
    if not any(s["Resource"] == table for s in statements):
        return
    with_key = _resolved(statements, {"HasIdempotencyKey": True})
    decrypts = [
        s
        for s in with_key
        if "kms:Decrypt" in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
        and s["Resource"] == {"Ref": "IdempotencyKmsKeyArn"}
    ]
    assert decrypts, f"{logical_id} cannot read its records from a table encrypted with IdempotencyKmsKeyArn"
    without_key = _resolved(statements, {"HasIdempotencyKey": False})
    for statement in without_key:
        if any(
            a.startswith("kms:")
            for a in (statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
        ):
            assert statement["Resource"] == {
                "Fn::Sub": "arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/none"
            }, statement


def test_the_email_function_sends_from_the_sender_only_to_recipients_of_any_identity() -> None:
    """SES authorises a send against the identities it uses: the sender's (an address, or the domain it was verified
    through) and, while the account is in the SES sandbox, each verified recipient's. The deploying page tells a
    sandboxed user to verify the recipients, so the policy may not name the sender's identity alone; it keeps the
    function to SenderEmail with the ses:FromAddress condition instead."""
    (send,) = [s for s in _statements("EmailFunction") if "ses:SendEmail" in str(s["Action"])]
    assert send["Action"] == "ses:SendEmail"
    assert send["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/*"}
    assert send["Condition"] == {"StringEquals": {"ses:FromAddress": {"Ref": "SenderEmail"}}}
    code = (ROOT / "functions" / "email" / "app.py").read_text()
    assert "FromEmailAddress=SENDER" in code and 'SENDER = os.environ["SENDER_EMAIL"]' in code
    environment = FUNCTIONS["EmailFunction"]["Properties"]["Environment"]["Variables"]
    assert environment["SENDER_EMAIL"] == {"Ref": "SenderEmail"}


@pytest.mark.usefixtures("restore_environment")
def test_the_payment_function_may_describe_its_idempotency_table_to_tell_a_missing_one(moto_endpoint: str) -> None:
    """A commit refused for what it asks is the table's fault or a write's: the store asks DescribeTable which
    (`stores/diagnosis.unfit_table`). Without the grant AWS answers AccessDenied, and a deleted idempotency table was
    reported as the function's writes being invalid. Here the table goes while the payment runs."""
    stack = LocalStack.create(dynamodb_endpoint=moto_endpoint, aws_endpoint=moto_endpoint)
    tables = {name: logical_id for logical_id, name in stack.names.items()}
    payment = stack.load_function("PaymentFunction")
    described: set[tuple[str, str]] = set()

    def drop_the_table(**_: Any) -> None:
        stack.dynamodb.delete_table(TableName=stack.names["IdempotencyTable"])

    def record(params: dict[str, Any], **_: Any) -> None:
        described.add(("dynamodb:DescribeTable", tables[params["TableName"]]))

    events = payment.store.client.meta.events
    events.register("before-call.dynamodb.TransactWriteItems", drop_the_table)
    events.register("before-parameter-build.dynamodb.DescribeTable", record)
    answer = payment.handler(load_event("payment-create.json"), LambdaContext("PaymentFunction"))
    assert answer["statusCode"] == 500 and "store-misconfigured" in answer["body"]
    assert described == {("dynamodb:DescribeTable", "IdempotencyTable")}
    assert described <= _granted("PaymentFunction")
