"""Attribute selectors (ETSI GS NFV-SOL 013 clause 5.3).

Valid combinations (SOL013 table 5.3.2-2) and what the response keeps:

==============================  ==========================================================
(no selector parameter)         same as ``exclude_default``
``all_fields``                  everything
``fields=<list>``               everything except the optional complex attributes that are
                                not in <list>
``exclude_fields=<list>``       everything except the complex attributes in <list>
``exclude_default``             everything except the resource's default-excluded set
``exclude_default&fields=``     everything except the default-excluded set, unless in <list>
==============================  ==========================================================

Every other combination is refused with 400. Note that ``fields`` alone is stricter than
``exclude_default&fields``: it drops *every* optional complex attribute not listed, not just
the default-excluded ones.

Without a schema, "complex" is judged from the value: a JSON object, or an array that is
empty or holds objects/arrays (an array of strings such as a list of identifiers is treated
as simple). Attributes named in ``mandatory`` (``_links`` by default; SOL013 only lets
optional attributes be deselected) are never removed. A path ``a/b`` in ``fields`` keeps
``a`` only as a carrier for ``b``: inside ``a`` the same pruning applies. Paths crossing an
array apply to each element. Unknown names select nothing and are not an error.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Query

from sol013.problem import ApiError

# A path tree: {"a": {"b": {}}} for "a/b"; an empty subtree means "the whole attribute".
_Tree = dict[str, "_Tree"]


@dataclass(frozen=True)
class Selector:
    all_fields: bool = False
    fields: tuple[str, ...] = ()
    exclude_fields: tuple[str, ...] = ()
    exclude_default: bool = False


def _flag(name: str, value: str | None) -> bool:
    if value is None:
        return False
    # SOL013 flags take no value; "true" is tolerated because many clients send it.
    if value == "" or value.lower() == "true":
        return True
    raise ApiError(400, f"{name} is a flag and takes no value (got {name}={value!r})")


def _path_list(name: str, value: str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    paths = tuple(value.split(","))
    for path in paths:
        if not path or any(not part or part != part.strip() for part in path.split("/")):
            raise ApiError(
                400,
                f"{name}: malformed attribute name {path!r} in {value!r} "
                "(expected a comma-separated list of names or name/name paths)",
            )
    return paths


def parse_selector(
    all_fields: str | None,
    fields: str | None,
    exclude_fields: str | None,
    exclude_default: str | None,
) -> Selector:
    selector = Selector(
        all_fields=_flag("all_fields", all_fields),
        fields=_path_list("fields", fields),
        exclude_fields=_path_list("exclude_fields", exclude_fields),
        exclude_default=_flag("exclude_default", exclude_default),
    )
    given = [
        name
        for name, present in (
            ("all_fields", selector.all_fields),
            ("fields", fields is not None),
            ("exclude_fields", exclude_fields is not None),
            ("exclude_default", selector.exclude_default),
        )
        if present
    ]
    if len(given) > 1 and set(given) != {"fields", "exclude_default"}:
        raise ApiError(
            400,
            f"attribute selectors {' and '.join(given)} cannot be combined; valid are one of "
            "all_fields, fields, exclude_fields, exclude_default, or fields with "
            "exclude_default (ETSI GS NFV-SOL 013 clause 5.3.2)",
        )
    return selector


def selector_dependency(
    all_fields: str | None = Query(
        None, description="Include all complex attributes (flag). SOL013 clause 5.3."
    ),
    fields: str | None = Query(
        None, description="Complex attributes to include, comma-separated. SOL013 clause 5.3."
    ),
    exclude_fields: str | None = Query(
        None, description="Complex attributes to exclude, comma-separated. SOL013 clause 5.3."
    ),
    exclude_default: str | None = Query(
        None, description="Exclude the resource's default set of complex attributes (flag)."
    ),
) -> Selector:
    return parse_selector(all_fields, fields, exclude_fields, exclude_default)


def _tree(paths: Sequence[str]) -> _Tree:
    root: _Tree = {}
    for path in paths:
        node = root
        parts = path.split("/")
        for i, part in enumerate(parts):
            if part in node and not node[part]:
                break  # an ancestor is already selected whole
            child = node.setdefault(part, {})
            if i == len(parts) - 1:
                child.clear()
            node = child
    return root


def _objects(value: Any) -> Iterator[dict[str, Any]]:
    """The objects a path step reaches: the value itself, or each object in an array."""
    if isinstance(value, dict):
        yield value
    elif isinstance(value, list):
        for element in value:
            yield from _objects(element)


def _is_complex(value: Any) -> bool:
    if isinstance(value, dict):
        return True
    if isinstance(value, list):
        return not value or any(isinstance(e, dict | list) for e in value)
    return False


def _remove(node: Any, tree: _Tree, keep: _Tree) -> None:
    for obj in _objects(node):
        for key, sub in tree.items():
            if key not in obj or (key in keep and not keep[key]):
                continue
            if sub:
                _remove(obj[key], sub, keep.get(key, {}))
            else:
                del obj[key]


def _prune(node: Any, wanted: _Tree, keep: _Tree) -> None:
    """Drops complex attributes not in ``wanted`` (or ``keep``), recursing along ``wanted``."""
    for obj in _objects(node):
        for key in list(obj):
            if key in keep and not keep[key]:
                continue
            if key in wanted:
                if wanted[key]:
                    _prune(obj[key], wanted[key], keep.get(key, {}))
            elif _is_complex(obj[key]):
                del obj[key]


def _drop_default(node: Any, default: _Tree, wanted: _Tree, keep: _Tree) -> None:
    """Removes the default-excluded attributes, sparing those named in ``wanted``."""
    for obj in _objects(node):
        for key, sub in default.items():
            if key not in obj or (key in keep and not keep[key]):
                continue
            if key in wanted and not wanted[key]:
                continue  # explicitly requested whole
            if sub:
                _drop_default(obj[key], sub, wanted.get(key, {}), keep.get(key, {}))
            elif key in wanted:
                # Only a part of it was requested: keep it as the carrier of that part.
                _prune(obj[key], wanted[key], keep.get(key, {}))
            else:
                del obj[key]


def _check_not_mandatory(paths: Sequence[str], mandatory: Sequence[str]) -> None:
    for path in paths:
        for required in mandatory:
            if path == required or path.startswith(required + "/"):
                raise ApiError(
                    400, f"exclude_fields: attribute '{path}' is mandatory and cannot be excluded"
                )


def apply_selector(
    doc: dict[str, Any],
    selector: Selector,
    *,
    default_excluded: Sequence[str],
    mandatory: Sequence[str] = ("_links",),
) -> dict[str, Any]:
    """A copy of ``doc`` reduced as ``selector`` asks; ``doc`` itself is left untouched."""
    result = copy.deepcopy(doc)
    keep = _tree(mandatory)
    if selector.all_fields:
        return result
    if selector.exclude_fields:
        _check_not_mandatory(selector.exclude_fields, mandatory)
        _remove(result, _tree(selector.exclude_fields), keep)
    elif selector.fields and not selector.exclude_default:
        _prune(result, _tree(selector.fields), keep)
    else:
        _drop_default(result, _tree(default_excluded), _tree(selector.fields), keep)
    return result
