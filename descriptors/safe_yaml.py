"""YAML loading that refuses what a hostile package can use against the parser.

Package YAML is untrusted input. PyYAML's safe loader already refuses Python
object tags, but it will build a "billion laughs" document whose aliases
expand to billions of nodes once anything walks it (tosca-parser deep-copies
templates, JSON encoding expands every alias). So the composed node graph is
measured with aliases counted at their full expanded size before anything is
constructed, and text must be valid UTF-8 as SOL001 requires.

Documents are read with libyaml (`yaml.CSafeLoader`), about ten times faster
than the pure-Python loader. Its composer recurses in C once per nesting
level without any depth check and crashes the interpreter (SIGSEGV) on a
document nested some tens of thousands of levels deep, so the event stream is
walked once first, counting nesting depth and aliases, before anything is
composed.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from descriptors.errors import DescriptorError

# A real VNFD has a few thousand nodes; 200k leaves room for generated ones.
MAX_EXPANDED_NODES = 200_000
MAX_ALIASES = 10_000
# A VNFD nests some 15 levels. The constructed data is later walked
# recursively (tosca-parser's deep copies, yaml.safe_dump of working copies,
# pydantic), a few interpreter frames per level, so depth must stay well below
# Python's recursion limit, not just below what libyaml survives.
MAX_DEPTH = 100

_OPENING_EVENTS = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
_CLOSING_EVENTS = (yaml.SequenceEndEvent, yaml.MappingEndEvent)


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


def _check_events(text: str) -> None:
    """Refuse too many aliases or too deep nesting, from events alone (nothing composed)."""
    loader = yaml.CSafeLoader(text)
    try:
        depth = 0
        aliases = 0
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, _OPENING_EVENTS):
                depth += 1
                if depth > MAX_DEPTH:
                    raise DescriptorError(f"YAML nested too deeply (more than {MAX_DEPTH} levels)")
            elif isinstance(event, _CLOSING_EVENTS):
                depth -= 1
            elif isinstance(event, yaml.AliasEvent):
                aliases += 1
                if aliases > MAX_ALIASES:
                    raise DescriptorError(f"more than {MAX_ALIASES} YAML aliases")
    finally:
        loader.dispose()


def _expanded_size(root: Node) -> int:
    """Count nodes as if every alias were copied, without copying anything."""
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()
    # Iterative post-order walk: no recursion, whatever the document's shape.
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
    loader: yaml.CSafeLoader | None = None
    try:
        _check_events(text)
        loader = yaml.CSafeLoader(text)
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node)
        return loader.construct_document(node)
    except DescriptorError as exc:
        raise DescriptorError(exc.detail, location=source) from None
    except yaml.reader.ReaderError as exc:
        raise DescriptorError(
            f"invalid YAML: unacceptable character #x{exc.character:04x}: {exc.reason}",
            location=source,
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise DescriptorError(f"invalid YAML: {problem}", location=where) from None
    except RecursionError:
        # Backstop only: MAX_DEPTH keeps composition and construction shallow.
        raise DescriptorError("YAML nested too deeply", location=source) from None
    finally:
        if loader is not None:
            loader.dispose()
