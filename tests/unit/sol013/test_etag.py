from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import Enum
from uuid import UUID

import pytest

from sol013.etag import check_if_match, etag_for
from sol013.problem import ApiError

DOC = {"id": "p1", "state": "ENABLED", "nested": {"b": 2, "a": [1, 2]}}


class State(Enum):
    ON = "ON"


def test_etag_is_quoted_strong_and_stable() -> None:
    tag = etag_for(DOC)
    assert re.fullmatch(r'"[0-9a-f]{32}"', tag)
    assert etag_for(DOC) == tag


def test_etag_ignores_key_order() -> None:
    reordered = {"nested": {"a": [1, 2], "b": 2}, "state": "ENABLED", "id": "p1"}
    assert etag_for(reordered) == etag_for(DOC)


def test_etag_changes_with_content() -> None:
    assert etag_for({**DOC, "state": "DISABLED"}) != etag_for(DOC)
    assert etag_for({"nested": {"a": [2, 1], "b": 2}}) != etag_for(
        {"nested": {"a": [1, 2], "b": 2}}
    )
    assert etag_for({"n": 1}) != etag_for({"n": "1"})


def test_etag_handles_common_python_values() -> None:
    doc = {
        "at": datetime(2024, 1, 1, tzinfo=UTC),
        "state": State.ON,
        "uuid": UUID(int=1),
        "tags": {"b", "a"},
    }
    assert etag_for(doc) == etag_for(
        {
            "at": "2024-01-01T00:00:00+00:00",
            "state": "ON",
            "uuid": str(UUID(int=1)),
            "tags": ["a", "b"],
        }
    )
    with pytest.raises(TypeError):
        etag_for({"x": object()})


TAG = etag_for(DOC)
OPAQUE = TAG.strip('"')


@pytest.mark.parametrize(
    "if_match",
    [
        None,
        "*",
        " * ",
        TAG,
        f"W/{TAG}",
        f'"other", {TAG}',
        f'W/"other",W/{TAG}',
        f'  "x" ,  {TAG}  ',
        OPAQUE,  # a client that forgot the quotes
    ],
)
def test_if_match_accepts(if_match: str | None) -> None:
    check_if_match(if_match, TAG)


@pytest.mark.parametrize(
    "if_match",
    ['"other"', 'W/"other"', '"a", "b"', f'"{OPAQUE[:-1]}"', "", "  "],
)
def test_if_match_mismatch_is_412(if_match: str) -> None:
    with pytest.raises(ApiError) as info:
        check_if_match(if_match, TAG)
    assert info.value.status == 412
    assert info.value.detail.startswith("ETag mismatch: ")


def test_mismatch_detail_names_both_tags() -> None:
    with pytest.raises(ApiError) as info:
        check_if_match('"stale"', TAG)
    assert info.value.detail == (
        f'ETag mismatch: If-Match "stale" does not match the current ETag {TAG}; '
        "the resource has changed, read it again and retry"
    )


def test_weak_current_tag_compares_by_opaque_part() -> None:
    check_if_match('"abc"', 'W/"abc"')


@pytest.mark.parametrize("if_match", ['"unterminated', 'W/"a" "b"', '"a",,'])
def test_malformed_if_match_is_412(if_match: str) -> None:
    with pytest.raises(ApiError) as info:
        check_if_match(if_match, TAG)
    assert info.value.status == 412
    assert "ETag mismatch" in info.value.detail
