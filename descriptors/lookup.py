"""Finding a descriptor element by its id, the way every VNFD and NSD accessor does."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, TypeVar


class _Identified(Protocol):
    @property
    def id(self) -> str: ...


ElementT = TypeVar("ElementT", bound=_Identified)


def by_id(elements: Iterable[ElementT], wanted: str | None) -> ElementT:
    """The element with this id; KeyError if there is none."""
    for element in elements:
        if element.id == wanted:
            return element
    raise KeyError(wanted)


def instantiation_level(
    levels: Sequence[ElementT], level_id: str | None, default: str | None
) -> ElementT:
    """The named level, else the default one, else the only one; KeyError if none fits."""
    wanted = level_id or default
    if wanted is None and len(levels) == 1:
        return levels[0]
    return by_id(levels, wanted)
