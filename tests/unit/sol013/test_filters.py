from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, Field

from sol013.filters import AttributeFilter, FilterTerm, parse_filter
from sol013.problem import ApiError

PKG: dict[str, Any] = {
    "id": "p1",
    "vnfProductName": "nat",
    "vnfdVersion": "1.10",
    "onboardingState": "ONBOARDED",
    "operationalState": "ENABLED",
    "size": 150,
    "ratio": 0.5,
    "enabled": True,
    "createdAt": "2024-05-01T10:00:00Z",
    "description": "fast, simple (NAT)",
    "owner": "O'Brien",
    "vnfmInfo": ["vnfm-a", "vnfm-b"],
    "softwareImages": [
        {
            "id": "img1",
            "containerFormat": "BARE",
            "minDisk": 1,
            "checksum": {"algorithm": "SHA-256"},
        },
        {
            "id": "img2",
            "containerFormat": "DOCKER",
            "minDisk": 4,
            "checksum": {"algorithm": "SHA-512"},
        },
    ],
    "userDefinedData": {"key": "value", "tier": 2, "nested": {"deep": "yes"}},
    "nothing": None,
}


def match(expr: str, doc: dict[str, Any] = PKG) -> bool:
    return parse_filter(expr).matches(doc)


def error(expr: str, **kwargs: Any) -> str:
    with pytest.raises(ApiError) as info:
        parse_filter(expr, **kwargs)
    assert info.value.status == 400
    return info.value.detail


def test_parse_structure() -> None:
    parsed = parse_filter("(eq,a/b,x,'y,z');(gt,n,1)")
    assert parsed == AttributeFilter(
        (FilterTerm("eq", ("a", "b"), ("x", "y,z")), FilterTerm("gt", ("n",), ("1",)))
    )


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("(eq,onboardingState,ONBOARDED)", True),
        ("(eq,onboardingState,CREATED)", False),
        ("(eq,onboardingState,CREATED,ONBOARDED)", True),  # several values: any
        ("(neq,onboardingState,CREATED)", True),
        ("(neq,onboardingState,CREATED,ONBOARDED)", False),  # none of them
        ("(in,operationalState,ENABLED,DISABLED)", True),
        ("(in,operationalState,DISABLED)", False),
        ("(nin,operationalState,DISABLED)", True),
        ("(nin,operationalState,DISABLED,ENABLED)", False),
        ("(cont,vnfProductName,a)", True),
        ("(cont,vnfProductName,x,n)", True),
        ("(cont,vnfProductName,x)", False),
        ("(ncont,vnfProductName,x,y)", True),
        ("(ncont,vnfProductName,x,na)", False),
        ("(eq,onboardingState,onboarded)", False),  # case-sensitive
    ],
)
def test_operators(expr: str, expected: bool) -> None:
    assert match(expr) is expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("(gt,size,100)", True),  # numeric: 150 > 100 although "150" < "100" is false as text
        ("(gt,size,1000)", False),
        ("(gte,size,150)", True),
        ("(lt,size,1e3)", True),
        ("(lte,size,149.9)", False),
        ("(eq,size,150.0)", True),
        ("(eq,size,150)", True),
        ("(gt,ratio,0.25)", True),
        ("(lt,ratio,-1)", False),
        ("(gt,size,abc)", False),  # non-numeric literal: compared as strings ("150" < "abc")
        ("(gt,vnfdVersion,1.9)", False),  # a string attribute compares as text, not as number
        ("(eq,vnfdVersion,1.10)", True),
    ],
)
def test_numeric_comparison(expr: str, expected: bool) -> None:
    assert match(expr) is expected


def test_big_integers_compare_exactly() -> None:
    doc = {"n": 2**60 + 1}
    assert match(f"(eq,n,{2**60 + 1})", doc)
    assert not match(f"(eq,n,{2**60})", doc)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("(eq,enabled,true)", True),
        ("(eq,enabled,false)", False),
        ("(neq,enabled,false)", True),
        ("(eq,enabled,True)", False),  # only the JSON literals true/false name booleans
    ],
)
def test_booleans(expr: str, expected: bool) -> None:
    assert match(expr) is expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("(gt,createdAt,2024-01-01T00:00:00Z)", True),
        ("(lt,createdAt,2024-05-01T09:59:59Z)", False),
        ("(gte,createdAt,2024-05-01T10:00:00Z)", True),
    ],
)
def test_iso_dates_compare_as_strings(expr: str, expected: bool) -> None:
    assert match(expr) is expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("(eq,softwareImages/containerFormat,DOCKER)", True),  # any element
        ("(eq,softwareImages/containerFormat,OVF)", False),
        ("(neq,softwareImages/containerFormat,DOCKER)", False),  # some element equals
        ("(neq,softwareImages/containerFormat,OVF)", True),
        ("(nin,softwareImages/containerFormat,OVF,QCOW2)", True),
        ("(gt,softwareImages/minDisk,3)", True),
        ("(gt,softwareImages/minDisk,4)", False),
        ("(eq,softwareImages/checksum/algorithm,SHA-512)", True),
        ("(ncont,softwareImages/checksum/algorithm,512)", False),
        ("(eq,vnfmInfo,vnfm-b)", True),  # array of strings: any element
        ("(neq,vnfmInfo,vnfm-c)", True),
        ("(eq,userDefinedData/key,value)", True),
        ("(eq,userDefinedData/tier,2)", True),
        ("(eq,userDefinedData/nested/deep,yes)", True),
        ("(eq,userDefinedData/missing,x)", False),
    ],
)
def test_nested_paths_and_arrays(expr: str, expected: bool) -> None:
    assert match(expr) is expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("(eq,absent,x)", False),
        ("(neq,absent,x)", True),
        ("(nin,absent,x)", True),
        ("(ncont,absent,x)", True),
        ("(gt,absent,1)", False),
        ("(eq,nothing,None)", False),  # null behaves like absent
        ("(neq,nothing,x)", True),
        ("(eq,userDefinedData,x)", False),  # an object is not a comparable value
        ("(eq,id/sub,x)", False),  # descending into a scalar reaches nothing
    ],
)
def test_absent_and_non_scalar_attributes(expr: str, expected: bool) -> None:
    assert match(expr) is expected


def test_terms_are_anded() -> None:
    assert match("(eq,onboardingState,ONBOARDED);(eq,operationalState,ENABLED)")
    assert not match("(eq,onboardingState,ONBOARDED);(eq,operationalState,DISABLED)")
    assert not match("(eq,onboardingState,CREATED);(eq,operationalState,ENABLED)")


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("(eq,description,'fast, simple (NAT)')", True),
        ("(cont,description,', s')", True),
        ("(cont,description,'(NAT)')", True),
        ("(eq,owner,'O''Brien')", True),
        ("(eq,owner,'O''Brien',other)", True),
        ("(cont,owner,'''')", True),
        ("(eq,vnfProductName,'nat')", True),  # quoting is allowed even when not needed
        ("(eq,x,'')", False),
    ],
)
def test_quoted_values(expr: str, expected: bool) -> None:
    assert match(expr) is expected


def test_semicolon_and_open_paren_need_no_quoting_inside_values() -> None:
    assert match("(eq,v,a;b(c)", {"v": "a;b(c"})
    assert parse_filter("(eq,v,'')").terms[0].values == ("",)
    assert parse_filter("(eq,v, spaced )").terms[0].values == (" spaced ",)


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("", "the expression is empty"),
        ("   ", "the expression is empty"),
        (
            "eq,a,b",
            "expected '(' to start a term such as (eq,attribute,value), found 'e' at character 1",
        ),
        (
            "(foo,a,b)",
            "unknown operator 'foo' (expected one of eq, neq, in, nin, gt, gte, lt, lte, "
            "cont, ncont) at character 2",
        ),
        ("(EQ,a,b)", "unknown operator 'EQ'"),
        ("(eq)", "expected ',' after operator 'eq', found ')' at character 4"),
        ("(eq,,b)", "missing attribute name at character 5"),
        ("(eq,a)", "expected ',' and at least one value after attribute 'a' at character 6"),
        ("(eq,a,)", "empty value (write '' for an empty string) at character 7"),
        ("(eq,a,b,)", "empty value"),
        ("(eq,a,b", "expected ')' to close the term, found end of expression at character 8"),
        ("(eq,a,b))", "expected ';' between terms or end of expression at character 9"),
        ("(eq,a,b);", "expected '(' to start a term"),
        ("(eq,a,b)(eq,c,d)", "expected ';' between terms or end of expression at character 9"),
        (
            "(eq,a,O'Brien)",
            'a value containing "\'" must be enclosed in single quotes at character 7',
        ),
        ("(eq,a,'abc)", "unterminated quoted value at character 7"),
        ("(eq,a,'abc'd)", "expected ',' or ')' after the closing quote at character 12"),
        ("(eq,a//b,c)", "malformed attribute path 'a//b' at character 5"),
        ("(eq,/a,c)", "malformed attribute path '/a'"),
        ("(eq,a/,c)", "malformed attribute path 'a/'"),
        ("(eq, a,c)", "malformed attribute path ' a'"),
        ("(gt,size,1,2)", "operator 'gt' takes exactly one value, got 2 at character 2"),
    ],
)
def test_malformed_expressions_say_what_and_where(expr: str, fragment: str) -> None:
    detail = error(expr)
    assert detail.startswith("invalid filter: ")
    assert fragment in detail


def test_error_shows_the_text_near_the_problem() -> None:
    assert "(near 'foo,a,b)')" in error("(foo,a,b)")


class Checksum(BaseModel):
    algorithm: str
    hash: str


class SoftwareImage(BaseModel):
    id: str
    containerFormat: str
    checksum: Checksum


class Links(BaseModel):
    self_: dict[str, str] = Field(alias="self")


class VnfPkgInfo(BaseModel):
    id: str
    onboardingState: str
    softwareImages: list[SoftwareImage] | None = None
    userDefinedData: dict[str, Any] | None = None
    extra: Any = None
    vnfmInfo: list[str] = []
    links: Links = Field(alias="_links")


@pytest.mark.parametrize(
    "expr",
    [
        "(eq,id,x)",
        "(eq,softwareImages/containerFormat,BARE)",
        "(eq,softwareImages/checksum/algorithm,SHA-256)",
        "(eq,softwareImages/checksum,x)",
        "(eq,userDefinedData/anything/goes,x)",
        "(eq,extra/whatever,x)",
        "(eq,vnfmInfo,x)",
        "(eq,_links/self/href,x)",
    ],
)
def test_model_accepts_known_paths(expr: str) -> None:
    parse_filter(expr, model=VnfPkgInfo)


@pytest.mark.parametrize(
    ("expr", "path"),
    [
        ("(eq,nope,x)", "nope"),
        ("(eq,softwareImages/nope,x)", "softwareImages/nope"),
        ("(eq,softwareImages/checksum/algorithm/x,y)", "softwareImages/checksum/algorithm/x"),
        ("(eq,id/sub,x)", "id/sub"),
        ("(eq,links/self,x)", "links/self"),  # the alias is the public name
        ("(eq,id,x);(eq,bad/path,y)", "bad/path"),
    ],
)
def test_model_rejects_unknown_paths(expr: str, path: str) -> None:
    assert error(expr, model=VnfPkgInfo) == f"unknown attribute '{path}' in filter"
