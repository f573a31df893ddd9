"""Building every deployment flavour of a descriptor and checking they describe one thing.

A VNFD and an NSD alike may spread their flavours over several service
templates (SOL001 multi-flavour layout); each flavour substitutes the same
node type and repeats the descriptor-wide properties, which must agree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar

from toscaparser.tosca_template import ToscaTemplate

from descriptors.errors import DescriptorError
from descriptors.tosca_imports import Document


class _Flavour(Protocol):
    @property
    def flavour_id(self) -> str: ...


class _Info(Protocol):
    @property
    def node_type(self) -> str: ...

    @property
    def props(self) -> dict[str, Any]: ...


FlavourT = TypeVar("FlavourT", bound=_Flavour)
InfoT = TypeVar("InfoT", bound=_Info)


def build_flavours(
    parsed: list[tuple[Document, ToscaTemplate]],
    top: ToscaTemplate,
    build_flavour: Callable[[Document, ToscaTemplate, ToscaTemplate], tuple[FlavourT, InfoT]],
    fields: Iterable[str],
    *,
    kind: str,
) -> tuple[list[FlavourT], str, InfoT]:
    """The flavours, and the first one's file and descriptor-wide info.

    `kind` is "VNF" or "NS", for the messages; `fields` are the properties
    every flavour must give the same value.
    """
    # SOL001 calls a VNFD's flavours plain "deployment flavours" and their node "node type".
    qualifier = "" if kind == "VNF" else f"{kind} "
    flavours: list[FlavourT] = []
    infos: list[tuple[str, InfoT]] = []
    for doc, tpl in parsed:
        flavour, info = build_flavour(doc, tpl, top)
        if any(f.flavour_id == flavour.flavour_id for f in flavours):
            raise DescriptorError(
                f"{qualifier}deployment flavour {flavour.flavour_id!r} is defined twice",
                location=doc.rel,
            )
        flavours.append(flavour)
        infos.append((doc.rel, info))

    first_rel, first = infos[0]
    for rel, other in infos[1:]:
        if other.node_type != first.node_type:
            raise DescriptorError(
                f"flavours substitute different {qualifier}node types ({first.node_type!r} in "
                f"{first_rel}, {other.node_type!r} here)",
                location=rel,
            )
        for key in fields:
            if other.props.get(key) != first.props.get(key):
                raise DescriptorError(
                    f"{kind} property {key!r} differs between flavours "
                    f"({first.props.get(key)!r} in {first_rel}, {other.props.get(key)!r} here)",
                    location=rel,
                )
    return flavours, first_rel, first
