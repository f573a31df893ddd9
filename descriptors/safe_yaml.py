"""YAML loading that refuses what a hostile package can use against the parser.

Package YAML is untrusted input. PyYAML's safe loader already refuses Python
object tags, but it will build a "billion laughs" document whose aliases
expand to billions of nodes once anything walks it (tosca-parser deep-copies
templates, JSON encoding expands every alias). So the composed node graph is
measured with aliases counted at their full expanded size before anything is
constructed, and text must be valid UTF-8 as SOL001 requires.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from descriptors.errors import DescriptorError

# A real VNFD has a few thousand nodes; 200k leaves room for generated ones.
MAX_EXPANDED_NODES = 200_000
MAX_ALIASES = 10_000


def decode_utf8(data: bytes, *, source: str) -> str:
    """Decode package text strictly as UTF-8, naming the first bad byte's offset."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DescriptorError(
            f"file is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            location=source,
        ) from None
    return text.removeprefix("\ufeff")


class _CountingLoader(yaml.SafeLoader):
    """SafeLoader that counts alias references while composing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.alias_count = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            self.alias_count += 1
            if self.alias_count > MAX_ALIASES:
                raise DescriptorError(f"more than {MAX_ALIASES} YAML aliases")
        return super().compose_node(parent, index)


def _expanded_size(root: Node) -> int:
    """Count nodes as if every alias were copied, without copying anything."""
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()
    # Iterative post-order walk: a hostile document may nest deeper than the
    # interpreter's recursion limit.
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        children: list[Node] = []
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            children = [part for pair in node.value for part in pair]
        if not children_done:
            if key in in_progress:
                raise DescriptorError("recursive YAML alias")
            in_progress.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)
            continue
        in_progress.discard(key)
        total = 1 + sum(sizes[id(child)] for child in children)
        if total > MAX_EXPANDED_NODES:
            raise DescriptorError(
                f"YAML expands to more than {MAX_EXPANDED_NODES} nodes (alias bomb?)"
            )
        sizes[key] = total
    return sizes[id(root)]


def load_yaml(data: bytes | str, *, source: str) -> Any:
    """Parse one untrusted YAML document; raise DescriptorError naming `source` on any problem."""
    text = decode_utf8(data, source=source) if isinstance(data, bytes) else data
    loader = _CountingLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node)
        return loader.construct_document(node)
    except DescriptorError as exc:
        raise DescriptorError(exc.detail, location=source) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise DescriptorError(f"invalid YAML: {problem}", location=where) from None
    finally:
        loader.dispose()
