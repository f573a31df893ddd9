"""safe_yaml.load_yaml: libyaml speed without losing any of the hostile-input checks."""

from __future__ import annotations

import pytest

from descriptors.errors import DescriptorError
from descriptors.safe_yaml import MAX_ALIASES, MAX_DEPTH, load_yaml


def refused(text: str | bytes) -> DescriptorError:
    with pytest.raises(DescriptorError) as err:
        load_yaml(text, source="f.yaml")
    return err.value


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_plain_document_loads_with_yaml_1_1_types() -> None:
    text = "a: 1\nb: [x, 2.5, true, null]\nc: 2020-01-02\nd: &v {e: f}\ng: *v\n"
    data = load_yaml(text, source="f.yaml")
    assert data["a"] == 1
    assert data["b"] == ["x", 2.5, True, None]
    assert str(data["c"]) == "2020-01-02"
    assert data["g"] == {"e": "f"}


def test_empty_document_is_none() -> None:
    assert load_yaml(b"", source="f.yaml") is None


def test_byte_order_mark_is_accepted() -> None:
    assert load_yaml(b"\xef\xbb\xbfa: 1\n", source="f.yaml") == {"a": 1}


def test_nesting_up_to_the_limit_loads() -> None:
    data = load_yaml(nested(MAX_DEPTH), source="f.yaml")
    for _ in range(MAX_DEPTH - 1):
        data = data[0]
    assert data == []


@pytest.mark.parametrize(
    "text",
    [
        nested(MAX_DEPTH + 1),
        # Deep enough to overflow the C stack of libyaml's recursive composer
        # (SIGSEGV, not an exception) if it were reached.
        nested(200_000),
        "a:\n" + "".join(" " * (level + 1) + "a:\n" for level in range(MAX_DEPTH + 5)),
    ],
    ids=["just-over", "crashing-depth", "block-mappings"],
)
def test_deep_nesting_is_refused(text: str) -> None:
    error = refused(text)
    assert error.location == "f.yaml"
    assert "nested too deeply" in error.detail


def test_alias_bomb_is_refused() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    error = refused("\n".join(lines) + "\n")
    assert "alias bomb" in error.detail
    assert error.location == "f.yaml"


def test_too_many_aliases_are_refused() -> None:
    error = refused("a: &a x\nb: [" + ", ".join(["*a"] * (MAX_ALIASES + 1)) + "]\n")
    assert error.detail == f"more than {MAX_ALIASES} YAML aliases"


def test_recursive_alias_is_refused() -> None:
    assert refused("a: &a [*a]\n").detail == "recursive YAML alias"


def test_syntax_error_names_line_and_column() -> None:
    error = refused("a: [1, 2\nb: 3\n")
    assert error.location == "f.yaml:2:2"
    assert error.detail.startswith("invalid YAML: ")


def test_undefined_alias_names_line_and_column() -> None:
    error = refused("a: 1\nb: *nowhere\n")
    assert error.location == "f.yaml:2:4"
    assert "undefined alias" in error.detail


def test_second_document_is_refused() -> None:
    assert refused("a: 1\n---\nb: 2\n").location == "f.yaml:2:1"


def test_python_tags_are_refused() -> None:
    assert "could not determine a constructor" in refused("a: !!python/name:os.system\n").detail


def test_control_character_is_a_descriptor_error() -> None:
    error = refused("a: \x01\n")
    assert error.detail.startswith("invalid YAML: unacceptable character #x0001")
    assert error.location == "f.yaml"


def test_invalid_utf8_names_the_offset() -> None:
    error = refused(b"a: \xff\n")
    assert error.detail == "file is not valid UTF-8 (byte 0xff at offset 3)"
