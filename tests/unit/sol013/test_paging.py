from __future__ import annotations

import base64
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from sol013.paging import decode_marker, encode_marker, next_page_url, paginate
from sol013.problem import ApiError

ITEMS = [f"id-{i:03d}" for i in range(10)]
URL = "http://nfvo/vnfpkgm/v2/vnf_packages"


def link_url(link: str | None) -> str:
    assert link is not None
    match = re.fullmatch(r'<(.+)>; rel="next"', link)
    assert match, link
    return match.group(1)


def marker_of(link: str | None) -> str:
    return parse_qs(urlsplit(link_url(link)).query)["nextpage_opaque_marker"][0]


def page(
    marker: str | None, size: int = 4, items: list[str] = ITEMS, url: str = URL
) -> tuple[list[str], str | None]:
    return paginate(items, key=lambda s: s, marker=marker, page_size=size, request_url=url)


def test_walks_all_pages_without_gaps_or_repeats() -> None:
    seen: list[str] = []
    marker = None
    links = 0
    while True:
        items, link = page(marker)
        seen.extend(items)
        if link is None:
            break
        links += 1
        marker = marker_of(link)
    assert seen == ITEMS
    assert links == 2


def test_exact_multiple_has_no_empty_last_page() -> None:
    items, link = page(None, size=5)
    assert items == ITEMS[:5]
    items, link = page(marker_of(link), size=5)
    assert items == ITEMS[5:]
    assert link is None


def test_single_and_empty_pages() -> None:
    assert page(None, size=100) == (ITEMS, None)
    assert page(None, items=[]) == ([], None)


def test_marker_is_stable_when_items_change_between_requests() -> None:
    _, link = page(None, size=3)
    marker = marker_of(link)
    # The last item of page 1 is deleted and a new one is inserted before it.
    changed = sorted([*ITEMS[:2], "id-000a", *ITEMS[3:]])
    items, _ = page(marker, size=3, items=changed)
    assert items == ["id-003", "id-004", "id-005"]


def test_marker_beyond_the_end_gives_empty_page() -> None:
    assert page(encode_marker("zzz")) == ([], None)


def test_link_keeps_other_params_and_replaces_marker() -> None:
    url = (
        f"{URL}?filter=(eq,onboardingState,ONBOARDED)&exclude_default"
        "&nextpage_opaque_marker=old&fields=a%2Cb#frag"
    )
    old = encode_marker(ITEMS[0])
    url = url.replace("=old", f"={old}")
    _, link = page(old, size=2, url=url)
    assert link is not None
    new_url = link_url(link)
    assert new_url.startswith(
        f"{URL}?filter=(eq,onboardingState,ONBOARDED)&exclude_default&fields=a%2Cb"
        "&nextpage_opaque_marker="
    )
    assert new_url.count("nextpage_opaque_marker") == 1
    assert "#" not in new_url
    assert decode_marker(marker_of(link)) == ITEMS[2]


def test_next_page_url_without_query() -> None:
    assert next_page_url("/x", "m") == "/x?nextpage_opaque_marker=m"
    assert next_page_url("/x?", "m") == "/x?nextpage_opaque_marker=m"


def test_marker_round_trip_and_is_opaque() -> None:
    key = "pkg/ü ?&=,"
    marker = encode_marker(key)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", marker)
    assert decode_marker(marker) == key


def tamper(marker: str) -> str:
    raw = bytearray(base64.urlsafe_b64decode(marker + "=" * (-len(marker) % 4)))
    raw[2] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")


@pytest.mark.parametrize(
    "marker",
    [
        "",
        "!!!not-base64!!!",
        "abc",
        encode_marker("id-003")[:-3],  # truncated
        tamper(encode_marker("id-003")),  # edited key
        base64.urlsafe_b64encode(b"\x02id-003" + b"\0" * 8).decode(),  # unknown version
    ],
)
def test_invalid_marker_is_400(marker: str) -> None:
    with pytest.raises(ApiError) as info:
        page(marker)
    assert info.value.status == 400
    assert info.value.detail == "invalid nextpage_opaque_marker"


def test_secret_makes_markers_unforgeable() -> None:
    marker = encode_marker("id-003", secret=b"s3cret")
    assert decode_marker(marker, secret=b"s3cret") == "id-003"
    with pytest.raises(ApiError):
        decode_marker(marker)
    items, link = paginate(
        ITEMS, key=lambda s: s, marker=marker, page_size=2, request_url=URL, secret=b"s3cret"
    )
    assert items == ["id-004", "id-005"]
    assert decode_marker(marker_of(link), secret=b"s3cret") == "id-005"


def test_key_function_is_used() -> None:
    records = [{"id": s} for s in ITEMS]
    items, link = paginate(
        records, key=lambda r: r["id"], marker=None, page_size=3, request_url=URL
    )
    assert items == records[:3]
    assert decode_marker(marker_of(link)) == "id-002"


def test_page_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        page(None, size=0)
