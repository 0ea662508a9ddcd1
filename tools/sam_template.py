"""Reading a SAM template for local runs: its functions (routes, SQS sources, layers, settings), tables and queues.

CloudFormation's short tags (``!Ref``, ``!GetAtt``, ``!Sub``, ...) are read as their long forms
(``{"Ref": ...}``, ``{"Fn::GetAtt": ...}``), so any valid template parses. Values a local run cannot know are
resolved as SAM CLI resolves them: a parameter to its default (or an override), a resource to its logical id
(or the name the caller gives it), ``!Sub`` by substituting those; anything else becomes its logical id text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PSEUDO_PARAMETERS = {
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "local",
}


class TemplateError(ValueError):
    """The template lacks something a local run needs (a handler, a CodeUri)."""


class _CloudFormationLoader(yaml.SafeLoader):
    """SafeLoader that reads ``!Tag value`` as CloudFormation's long form."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _tag)


@dataclass(frozen=True)
class Route:
    method: str
    """Upper-case, or ``ANY``."""
    path: str
    """As the template writes it: ``/payments/{id}``, ``/files/{proxy+}``."""

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class SqsSource:
    """An SQS event source mapping: the queue (logical id), how many records a batch holds, partial responses."""

    queue: str
    batch_size: int
    reports_item_failures: bool


@dataclass
class Function:
    logical_id: str
    code_dir: Path
    handler: str
    timeout_s: int
    memory_mb: int
    environment: dict[str, str]
    routes: list[Route] = field(default_factory=list)
    architecture: str = "x86_64"
    layers: list[str] = field(default_factory=list)
    """Logical ids of the template's own layers (a layer ARN cannot be run locally: `TemplateError`)."""
    sqs_sources: list[SqsSource] = field(default_factory=list)

    def apply_env_vars(self, env_vars: dict[str, dict[str, str]]) -> None:
        """SAM CLI's ``--env-vars``: ``"Parameters"`` for every function, then the function's own section; as in
        SAM CLI, a value only replaces a variable the template declares for the function."""
        for scope in ("Parameters", self.logical_id):
            declared = env_vars.get(scope, {}).items()
            self.environment.update({k: v for k, v in declared if k in self.environment})


@dataclass(frozen=True)
class Table:
    logical_id: str
    name: str
    key_schema: list[dict[str, str]]
    attribute_definitions: list[dict[str, str]]


@dataclass(frozen=True)
class Queue:
    logical_id: str
    name: str
    visibility_timeout_s: int
    dead_letter_queue: str | None = None
    """Logical id of the redrive policy's target queue, if any."""
    max_receive_count: int = 0


@dataclass
class Template:
    functions: list[Function]
    tables: list[Table]
    queues: list[Queue] = field(default_factory=list)
    parameters: dict[str, str] = field(default_factory=dict)
    """Every template parameter's value: its default, or the override given."""


def load_template(
    path: Path, *, parameters: dict[str, str] | None = None, names: dict[str, str] | None = None
) -> Template:
    """The template's functions (with HttpApi routes) and tables; ``names`` gives resources their local names."""
    document = yaml.load(path.read_text(), Loader=_CloudFormationLoader)
    resolver = _Resolver(document, parameters or {}, names or {})
    resources: dict[str, Any] = document.get("Resources") or {}
    defaults: dict[str, Any] = (document.get("Globals") or {}).get("Function") or {}
    functions = [
        _function(logical_id, resource.get("Properties") or {}, defaults, path.parent, resolver)
        for logical_id, resource in resources.items()
        if resource.get("Type") == "AWS::Serverless::Function"
    ]
    tables = [
        Table(
            logical_id=logical_id,
            name=resolver.resource_name(logical_id),
            key_schema=resource["Properties"]["KeySchema"],
            attribute_definitions=resource["Properties"]["AttributeDefinitions"],
        )
        for logical_id, resource in resources.items()
        if resource.get("Type") in ("AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable")
        and "KeySchema" in (resource.get("Properties") or {})
    ]
    queues = [
        _queue(logical_id, resource.get("Properties") or {}, resolver)
        for logical_id, resource in resources.items()
        if resource.get("Type") == "AWS::SQS::Queue"
    ]
    return Template(functions, tables, queues, dict(resolver.parameters))


def _queue(logical_id: str, properties: dict[str, Any], resolver: _Resolver) -> Queue:
    redrive = properties.get("RedrivePolicy") or {}
    target = redrive.get("deadLetterTargetArn")
    return Queue(
        logical_id=logical_id,
        name=resolver.resource_name(logical_id),
        visibility_timeout_s=int(properties.get("VisibilityTimeout", 30)),
        dead_letter_queue=target["Fn::GetAtt"][0] if isinstance(target, dict) and "Fn::GetAtt" in target else None,
        max_receive_count=int(redrive.get("maxReceiveCount", 0)),
    )


def _function(
    logical_id: str, properties: dict[str, Any], defaults: dict[str, Any], root: Path, resolver: _Resolver
) -> Function:
    merged = {**defaults, **properties}
    if "Handler" not in merged or "CodeUri" not in merged:
        raise TemplateError(f"{logical_id} needs Handler and CodeUri to run locally")
    variables = {
        **((defaults.get("Environment") or {}).get("Variables") or {}),
        **((properties.get("Environment") or {}).get("Variables") or {}),
    }
    architectures = merged.get("Architectures") or ["x86_64"]
    function = Function(
        logical_id=logical_id,
        code_dir=(root / str(merged["CodeUri"])).resolve(),
        handler=str(merged["Handler"]),
        timeout_s=int(resolver.text(merged.get("Timeout", 3))),
        memory_mb=int(resolver.text(merged.get("MemorySize", 128))),
        environment={name: resolver.text(value) for name, value in variables.items()},
        architecture=resolver.text(architectures[0]),
        layers=[_layer_id(logical_id, layer) for layer in merged.get("Layers") or []],
    )
    for event in (properties.get("Events") or {}).values():
        event_properties = event.get("Properties") or {}
        if event.get("Type") == "SQS":
            queue = event_properties.get("Queue")
            queue_id = queue["Fn::GetAtt"][0] if isinstance(queue, dict) and "Fn::GetAtt" in queue else str(queue)
            function.sqs_sources.append(
                SqsSource(
                    queue=queue_id,
                    batch_size=int(event_properties.get("BatchSize", 10)),
                    reports_item_failures="ReportBatchItemFailures"
                    in (event_properties.get("FunctionResponseTypes") or []),
                )
            )
        if event.get("Type") != "HttpApi":
            continue
        method = str(event_properties.get("Method", "ANY")).upper()
        function.routes.append(Route("ANY" if method in ("*", "ANY") else method, event_properties.get("Path", "/")))
    return function


def _layer_id(function: str, layer: Any) -> str:
    if isinstance(layer, dict) and set(layer) == {"Ref"}:
        return str(layer["Ref"])
    raise TemplateError(f"{function}: only the template's own layers (!Ref) run locally, not {layer!r}")


class _Resolver:
    def __init__(self, document: dict[str, Any], overrides: dict[str, str], names: dict[str, str]) -> None:
        declared: dict[str, Any] = document.get("Parameters") or {}
        self.parameters = {name: str(spec.get("Default", "")) for name, spec in declared.items()}
        self.parameters.update(overrides)
        self.names = names

    def resource_name(self, logical_id: str) -> str:
        return self.names.get(logical_id, logical_id)

    def text(self, value: Any) -> str:
        if isinstance(value, dict) and len(value) == 1:
            (function, argument), *_ = value.items()
            if function == "Ref":
                return self._ref(str(argument))
            if function == "Fn::Sub":
                template = argument[0] if isinstance(argument, list) else argument
                local = argument[1] if isinstance(argument, list) and len(argument) > 1 else {}
                return re.sub(r"\$\{([^}!]+)\}", lambda m: self._sub(m.group(1), local), str(template))
            if function == "Fn::GetAtt":
                return ".".join(str(part) for part in argument)
        if isinstance(value, bool):
            return str(value).lower()
        return str(value)

    def _ref(self, name: str) -> str:
        if name in PSEUDO_PARAMETERS:
            return PSEUDO_PARAMETERS[name]
        return self.parameters.get(name, self.resource_name(name))

    def _sub(self, name: str, local: dict[str, Any]) -> str:
        if name in local:
            return self.text(local[name])
        return self._ref(name.split(".", 1)[0]) if "." not in name else name
