"""Turning tosca-parser values (functions, scalar-units, requirements) into plain data."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError as PydanticValidationError
from toscaparser.functions import Function
from toscaparser.tosca_template import ToscaTemplate

from descriptors.errors import DescriptorError
from descriptors.vnfd import CpProtocol, LinkBitrate

_SIZE_UNITS: Mapping[str, float] = {
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
    "tb": 1000**4,
    "tib": 1024**4,
}
_TIME_UNITS: Mapping[str, float] = {
    "d": 86400,
    "h": 3600,
    "m": 60,
    "s": 1,
    "ms": 1e-3,
    "us": 1e-6,
    "ns": 1e-9,
}
_FREQUENCY_UNITS: Mapping[str, float] = {"hz": 1, "khz": 1e3, "mhz": 1e6, "ghz": 1e9}


class ToscaValues:
    """Turns tosca-parser values (functions, scalar-units) into plain data."""

    _SCALAR = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]+)\s*$")

    def __init__(self, tpl: ToscaTemplate, location: str) -> None:
        self.location = location
        self.inputs: dict[str, Any] = {}
        for inp in getattr(tpl, "inputs", None) or []:
            self.inputs[inp.name] = inp.default

    def plain(self, value: Any) -> Any:
        if isinstance(value, Function):
            return self.plain(value.result())
        if isinstance(value, dict):
            if len(value) == 1 and "get_input" in value:
                return self.plain(self.inputs.get(str(value["get_input"])))
            return {str(k): self.plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.plain(v) for v in value]
        return value

    def _scalar(self, value: Any, units: Mapping[str, float], what: str) -> float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        match = self._SCALAR.match(str(value))
        if not match or match[2].lower() not in units:
            raise DescriptorError(
                f"{what}: {value!r} is not a valid {what}", location=self.location
            )
        return float(match[1]) * units[match[2].lower()]

    def size(self, value: Any, what: str = "scalar-unit.size") -> int:
        return int(self._scalar(value, _SIZE_UNITS, what))

    def seconds(self, value: Any, what: str = "scalar-unit.time") -> float:
        return self._scalar(value, _TIME_UNITS, what)

    def hertz(self, value: Any, what: str = "scalar-unit.frequency") -> float:
        return self._scalar(value, _FREQUENCY_UNITS, what)


def property_values(template: Any, values: ToscaValues) -> dict[str, Any]:
    """Property values of a node template or policy, with type defaults filled in."""
    return {p.name: values.plain(p.value) for p in template.get_properties_objects()}


def requirement_targets(template: Any, name: str) -> list[str]:
    """Node names assigned to one requirement of a node template."""
    out: list[str] = []
    for req in template.entity_tpl.get("requirements") or []:
        if not isinstance(req, dict) or name not in req:
            continue
        value = req[name]
        node = value.get("node") if isinstance(value, dict) else value
        if isinstance(node, str):
            out.append(node)
    return out


def first_or_none(items: list[str]) -> str | None:
    return items[0] if items else None


def pydantic_summary(exc: PydanticValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
    )


def link_bitrate(value: Any) -> LinkBitrate:
    value = value or {}
    return LinkBitrate(root=int(value.get("root", 0)), leaf=value.get("leaf"))


def cp_protocols(value: Any) -> list[CpProtocol]:
    return [CpProtocol.model_validate(item) for item in value or []]
