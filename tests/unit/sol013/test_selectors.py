from __future__ import annotations

import copy
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from sol013.problem import ApiError, install_problem_handlers
from sol013.selectors import Selector, apply_selector, parse_selector, selector_dependency

DEFAULT_EXCLUDED = (
    "softwareImages",
    "additionalArtifacts",
    "userDefinedData",
    "checksum",
    "onboardingFailureDetails",
)

PKG: dict[str, Any] = {
    "id": "p1",
    "onboardingState": "ONBOARDED",
    "vnfmInfo": ["vnfm-a"],  # array of strings: simple
    "checksum": {"algorithm": "SHA-256", "hash": "ab"},
    "softwareImages": [
        {"id": "i1", "checksum": {"algorithm": "SHA-256"}, "metadata": {"a": 1}, "size": 1},
        {"id": "i2", "checksum": {"algorithm": "SHA-512"}, "metadata": {"a": 2}, "size": 2},
    ],
    "additionalArtifacts": [],
    "userDefinedData": {"key": "value", "nested": {"x": 1}},
    "packageSecurityOption": {"option": "A"},  # complex, not default-excluded
    "_links": {"self": {"href": "/x"}},
}


def apply(selector: Selector, doc: dict[str, Any] = PKG) -> dict[str, Any]:
    return apply_selector(doc, selector, default_excluded=DEFAULT_EXCLUDED)


def parse_error(*args: str | None) -> str:
    with pytest.raises(ApiError) as info:
        parse_selector(*args)
    assert info.value.status == 400
    return info.value.detail


# --- parsing ----------------------------------------------------------------------------


def test_parse_nothing() -> None:
    assert parse_selector(None, None, None, None) == Selector()


@pytest.mark.parametrize("value", ["", "true", "TRUE"])
def test_flags_are_set_by_presence(value: str) -> None:
    assert parse_selector(value, None, None, None) == Selector(all_fields=True)
    assert parse_selector(None, None, None, value) == Selector(exclude_default=True)


def test_flag_with_a_value_is_rejected() -> None:
    assert parse_error("false", None, None, None) == (
        "all_fields is a flag and takes no value (got all_fields='false')"
    )
    assert "exclude_default is a flag" in parse_error(None, None, None, "1")


def test_parse_lists() -> None:
    assert parse_selector(None, "a,b/c", None, "") == Selector(
        fields=("a", "b/c"), exclude_default=True
    )
    assert parse_selector(None, None, "x", None) == Selector(exclude_fields=("x",))


@pytest.mark.parametrize("value", ["", "a,,b", "a/", "/a", "a//b", "a, b"])
def test_malformed_lists_are_rejected(value: str) -> None:
    detail = parse_error(None, value, None, None)
    assert detail.startswith("fields: malformed attribute name")
    assert repr(value) in detail


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (("", "a", None, None), "all_fields and fields"),
        (("", None, "a", None), "all_fields and exclude_fields"),
        (("", None, None, ""), "all_fields and exclude_default"),
        ((None, "a", "b", None), "fields and exclude_fields"),
        ((None, None, "b", ""), "exclude_fields and exclude_default"),
        (("", "a", "b", ""), "all_fields and fields and exclude_fields and exclude_default"),
    ],
)
def test_invalid_combinations(args: tuple[str | None, ...], names: str) -> None:
    detail = parse_error(*args)
    assert detail.startswith(f"attribute selectors {names} cannot be combined")
    assert "clause 5.3.2" in detail


# --- applying -----------------------------------------------------------------------------


def test_no_parameters_means_exclude_default() -> None:
    expected = {
        "id": "p1",
        "onboardingState": "ONBOARDED",
        "vnfmInfo": ["vnfm-a"],
        "packageSecurityOption": {"option": "A"},
        "_links": {"self": {"href": "/x"}},
    }
    assert apply(Selector()) == expected
    assert apply(Selector(exclude_default=True)) == expected


def test_all_fields_keeps_everything() -> None:
    result = apply(Selector(all_fields=True))
    assert result == PKG
    assert result is not PKG


def test_fields_alone_drops_every_unlisted_optional_complex_attribute() -> None:
    result = apply(Selector(fields=("softwareImages",)))
    assert result == {
        "id": "p1",
        "onboardingState": "ONBOARDED",
        "vnfmInfo": ["vnfm-a"],
        "softwareImages": PKG["softwareImages"],
        "_links": PKG["_links"],  # mandatory
    }


def test_fields_with_exclude_default_drops_only_unlisted_default_set() -> None:
    result = apply(Selector(fields=("softwareImages", "checksum"), exclude_default=True))
    assert set(result) == {
        "id",
        "onboardingState",
        "vnfmInfo",
        "checksum",
        "softwareImages",
        "packageSecurityOption",  # not in the default set, so it stays
        "_links",
    }


def test_fields_nested_path_keeps_parent_as_carrier() -> None:
    result = apply(Selector(fields=("softwareImages/checksum",)))
    assert result["softwareImages"] == [
        {"id": "i1", "checksum": {"algorithm": "SHA-256"}, "size": 1},
        {"id": "i2", "checksum": {"algorithm": "SHA-512"}, "size": 2},
    ]
    assert "userDefinedData" not in result


def test_fields_nested_path_into_default_excluded_with_exclude_default() -> None:
    result = apply(Selector(fields=("userDefinedData/nested",), exclude_default=True))
    assert result["userDefinedData"] == {"key": "value", "nested": {"x": 1}}
    result = apply(Selector(fields=("softwareImages/metadata",), exclude_default=True))
    assert result["softwareImages"][0] == {"id": "i1", "metadata": {"a": 1}, "size": 1}


def test_fields_whole_attribute_wins_over_sub_path() -> None:
    both = apply(Selector(fields=("softwareImages/checksum", "softwareImages")))
    assert both["softwareImages"] == PKG["softwareImages"]
    reverse = apply(Selector(fields=("softwareImages", "softwareImages/checksum")))
    assert reverse == both


def test_fields_unknown_name_selects_nothing() -> None:
    assert apply(Selector(fields=("nope",))) == apply(Selector(fields=("nope/deeper",)))


def test_exclude_fields_removes_only_listed() -> None:
    result = apply(Selector(exclude_fields=("packageSecurityOption", "softwareImages/checksum")))
    assert "packageSecurityOption" not in result
    assert result["userDefinedData"] == PKG["userDefinedData"]  # default set is not applied
    assert result["softwareImages"] == [
        {"id": "i1", "metadata": {"a": 1}, "size": 1},
        {"id": "i2", "metadata": {"a": 2}, "size": 2},
    ]


def test_exclude_fields_nested_in_object_and_missing_paths() -> None:
    result = apply(Selector(exclude_fields=("userDefinedData/nested", "nope", "id/x")))
    assert result["userDefinedData"] == {"key": "value"}
    assert result["id"] == "p1"


@pytest.mark.parametrize("path", ["_links", "_links/self"])
def test_exclude_fields_cannot_remove_mandatory(path: str) -> None:
    with pytest.raises(ApiError) as info:
        apply(Selector(exclude_fields=(path,)))
    assert info.value.status == 400
    assert info.value.detail == (
        f"exclude_fields: attribute '{path}' is mandatory and cannot be excluded"
    )


def test_custom_mandatory_attributes() -> None:
    result = apply_selector(
        PKG,
        Selector(fields=("checksum",)),
        default_excluded=DEFAULT_EXCLUDED,
        mandatory=("packageSecurityOption", "softwareImages/checksum"),
    )
    assert result["packageSecurityOption"] == {"option": "A"}
    assert "_links" not in result
    # A mandatory nested attribute does not pull in its optional parent.
    assert "softwareImages" not in result


def test_default_excluded_nested_path() -> None:
    result = apply_selector(
        PKG, Selector(), default_excluded=("softwareImages/metadata", "userDefinedData/nested")
    )
    assert result["softwareImages"][1] == {
        "id": "i2",
        "checksum": {"algorithm": "SHA-512"},
        "size": 2,
    }
    assert result["userDefinedData"] == {"key": "value"}


@pytest.mark.parametrize(
    "selector",
    [
        Selector(),
        Selector(all_fields=True),
        Selector(fields=("softwareImages/checksum",)),
        Selector(fields=("userDefinedData/nested",), exclude_default=True),
        Selector(exclude_fields=("softwareImages/checksum", "userDefinedData/nested")),
    ],
)
def test_input_is_never_mutated(selector: Selector) -> None:
    before = copy.deepcopy(PKG)
    result = apply(selector)
    assert before == PKG
    result["softwareImages"] = "changed" if "softwareImages" in result else None
    assert before == PKG


# --- dependency ---------------------------------------------------------------------------


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/things")
    def things(selector: Selector = Depends(selector_dependency)) -> dict[str, Any]:
        return apply_selector(PKG, selector, default_excluded=DEFAULT_EXCLUDED)

    return TestClient(app)


def test_dependency_default(client: TestClient) -> None:
    assert "softwareImages" not in client.get("/things").json()


def test_dependency_bare_flag(client: TestClient) -> None:
    assert client.get("/things?all_fields").json() == PKG


def test_dependency_fields_and_exclude_default(client: TestClient) -> None:
    body = client.get("/things?fields=softwareImages/checksum,checksum&exclude_default").json()
    assert set(body) == {
        "id",
        "onboardingState",
        "vnfmInfo",
        "checksum",
        "softwareImages",
        "packageSecurityOption",
        "_links",
    }


def test_dependency_invalid_combination_is_400_problem(client: TestClient) -> None:
    response = client.get("/things?all_fields&exclude_fields=checksum")
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert "all_fields and exclude_fields cannot be combined" in response.json()["detail"]


def test_dependency_documents_params_in_openapi(client: TestClient) -> None:
    params = client.get("/openapi.json").json()["paths"]["/things"]["get"]["parameters"]
    assert {p["name"] for p in params} == {
        "all_fields",
        "fields",
        "exclude_fields",
        "exclude_default",
    }
