"""Reading a SAM template for local runs: its functions, their HttpApi routes, environment and tables.

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


@dataclass
class Function:
    logical_id: str
    code_dir: Path
    handler: str
    timeout_s: int
    memory_mb: int
    environment: dict[str, str]
    routes: list[Route] = field(default_factory=list)


@dataclass(frozen=True)
class Table:
    logical_id: str
    name: str
    key_schema: list[dict[str, str]]
    attribute_definitions: list[dict[str, str]]


@dataclass
class Template:
    functions: list[Function]
    tables: list[Table]


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
    return Template(functions, tables)


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
    function = Function(
        logical_id=logical_id,
        code_dir=(root / str(merged["CodeUri"])).resolve(),
        handler=str(merged["Handler"]),
        timeout_s=int(merged.get("Timeout", 3)),
        memory_mb=int(merged.get("MemorySize", 128)),
        environment={name: resolver.text(value) for name, value in variables.items()},
    )
    for event in (properties.get("Events") or {}).values():
        if event.get("Type") != "HttpApi":
            continue
        event_properties = event.get("Properties") or {}
        method = str(event_properties.get("Method", "ANY")).upper()
        function.routes.append(Route("ANY" if method in ("*", "ANY") else method, event_properties.get("Path", "/")))
    return function


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
