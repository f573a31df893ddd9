"""HTTP Range parsing for package downloads."""

from __future__ import annotations

import pytest

from nfvo.vnfpkgm.ranges import parse_range
from sol013.problem import ApiError


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", (0, 9)),
        ("bytes=5-", (5, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=-500", (0, 99)),
        ("bytes=90-500", (90, 99)),
        ("bytes=0-1,5-6", None),  # several ranges: whole file
        ("items=0-9", None),
        ("bytes=9-3", None),
    ],
)
def test_parse_range(header: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=150-200", "bytes=-0"])
def test_unsatisfiable(header: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_range(header, 100)
    assert caught.value.status == 416
    assert caught.value.headers == {"Content-Range": "bytes */100"}
