"""template.yaml as the demo and the tests read it: the resources to create locally and the functions' settings.

The local tables are created from the template's own definitions, so the demo cannot drift from what `sam deploy`
makes. CloudFormation's short tags (``!Ref``, ``!GetAtt``, ...) load as their long form (``{"Ref": ...}``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"


class _CloudFormationLoader(yaml.SafeLoader):
    """A YAML loader that keeps CloudFormation's intrinsic functions as data."""


def _intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    template: dict[str, Any] = yaml.load(path.read_text(), Loader=_CloudFormationLoader)
    return template


def resources_of(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    """The template's resources of one type, by logical id."""
    return {name: r for name, r in template["Resources"].items() if r["Type"] == resource_type}


def create_table_request(properties: dict[str, Any], table_name: str) -> dict[str, Any]:
    """The CreateTable request for a table the template declares (the fields DynamoDB's API takes)."""
    request = {"TableName": table_name}
    for field in ("AttributeDefinitions", "KeySchema", "BillingMode", "GlobalSecondaryIndexes"):
        if field in properties:
            request[field] = properties[field]
    return request


def parameter_defaults(template: dict[str, Any]) -> dict[str, Any]:
    return {name: p.get("Default") for name, p in template.get("Parameters", {}).items()}


def function_environment(template: dict[str, Any], logical_id: str, names: dict[str, str]) -> dict[str, str]:
    """A function's environment (Globals, then its own), with ``!Ref`` resolved through ``names``.

    ``names`` maps logical ids and parameter names to their local values.
    """
    globals_env = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    own = template["Resources"][logical_id]["Properties"].get("Environment", {}).get("Variables", {})
    return {key: _resolve(value, names) for key, value in {**globals_env, **own}.items()}


def _resolve(value: Any, names: dict[str, str]) -> str:
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return names[value["Ref"]]
    if isinstance(value, (dict, list)):
        raise ValueError(f"the demo resolves only !Ref in function environments, got {value!r}")
    return str(value)
