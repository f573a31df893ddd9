from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from pydantic import BaseModel

from sol013.problem import (
    PROBLEM_JSON,
    ApiError,
    ProblemDetails,
    install_problem_handlers,
    problem_response,
)


class OperationalState(StrEnum):
    ENABLED = "ENABLED"
    DISABLED = "DISABLED"


class Patch(BaseModel):
    operationalState: OperationalState
    count: int = 0


class Many(BaseModel):
    values: list[int]


def make_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/api-error")
    def api_error() -> None:
        raise ApiError(409, "package is in use", headers={"Retry-After": "5"})

    @app.get("/api-error-typed")
    def api_error_typed() -> None:
        raise ApiError(422, "bad thing", title="Custom", type_="https://example.com/bad")

    @app.get("/http-error")
    def http_error() -> None:
        raise HTTPException(404, "VNF package 42 not found", headers={"X-Why": "gone"})

    @app.get("/http-error-dict")
    def http_error_dict() -> None:
        raise HTTPException(409, detail={"reason": "busy"})

    @app.get("/crash")
    def crash() -> None:
        raise RuntimeError("secret connection string postgres://u:pw@db")

    @app.patch("/items/{item_id}")
    def patch(item_id: int, body: Patch) -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/query")
    def query(limit: int) -> dict[str, int]:
        return {"limit": limit}

    return app


@pytest.fixture
def client() -> TestClient:
    return TestClient(make_app())


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    ProblemDetails.model_validate(body)
    assert body["status"] == status
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def test_problem_details_allows_extensions_and_requires_status_and_detail() -> None:
    problem = ProblemDetails.model_validate({"status": 400, "detail": "x", "errorCode": "E1"})
    assert problem.model_dump(exclude_none=True) == {
        "status": 400,
        "detail": "x",
        "errorCode": "E1",
    }
    with pytest.raises(ValueError):
        ProblemDetails.model_validate({"status": 400})


def test_problem_response_defaults_title_to_reason_phrase() -> None:
    response = problem_response(404, "nothing here", headers={"X-A": "b"})
    assert response.status_code == 404
    assert response.media_type == PROBLEM_JSON
    assert response.headers["X-A"] == "b"
    assert response.body == b'{"title":"Not Found","status":404,"detail":"nothing here"}'


def test_problem_response_explicit_title_and_unknown_status() -> None:
    assert b'"title":"Mine"' in problem_response(400, "d", title="Mine").body
    # A non-standard status has no reason phrase: title is simply omitted.
    assert b"title" not in problem_response(599, "d").body


def test_api_error_becomes_problem_with_headers(client: TestClient) -> None:
    response = client.get("/api-error")
    body = assert_problem(response, 409)
    assert body == {"title": "Conflict", "status": 409, "detail": "package is in use"}
    assert response.headers["Retry-After"] == "5"


def test_api_error_type_and_title(client: TestClient) -> None:
    body = assert_problem(client.get("/api-error-typed"), 422)
    assert body["type"] == "https://example.com/bad"
    assert body["title"] == "Custom"


def test_http_exception_keeps_status_detail_and_headers(client: TestClient) -> None:
    response = client.get("/http-error")
    body = assert_problem(response, 404)
    assert body["detail"] == "VNF package 42 not found"
    assert response.headers["X-Why"] == "gone"


def test_http_exception_with_structured_detail_is_serialised(client: TestClient) -> None:
    body = assert_problem(client.get("/http-error-dict"), 409)
    assert body["detail"] == '{"reason": "busy"}'


def test_unknown_route_is_404_problem_naming_the_path(client: TestClient) -> None:
    body = assert_problem(client.get("/no/such/thing"), 404)
    assert body["detail"] == "no resource at /no/such/thing"
    assert body["title"] == "Not Found"


def test_wrong_method_is_405_problem_with_allow_header(client: TestClient) -> None:
    response = client.delete("/api-error")
    body = assert_problem(response, 405)
    assert body["detail"] == "method DELETE is not allowed on /api-error"
    assert response.headers["Allow"] == "GET"


def test_validation_error_is_400_naming_each_field(client: TestClient) -> None:
    response = client.patch("/items/abc", json={"operationalState": "ON", "count": "many"})
    body = assert_problem(response, 400)
    detail = body["detail"]
    assert "path.item_id: Input should be a valid integer" in detail
    assert "body.operationalState: Input should be 'ENABLED' or 'DISABLED'" in detail
    assert "body.count: Input should be a valid integer" in detail
    assert "Traceback" not in detail


def test_validation_error_missing_body_and_query(client: TestClient) -> None:
    assert assert_problem(client.patch("/items/1"), 400)["detail"] == "body: Field required"
    assert assert_problem(client.get("/query"), 400)["detail"] == "query.limit: Field required"


def test_validation_error_invalid_json_says_where(client: TestClient) -> None:
    response = client.patch(
        "/items/1", content=b'{"operationalState": ', headers={"content-type": "application/json"}
    )
    detail = assert_problem(response, 400)["detail"]
    assert detail.startswith("body: invalid JSON at character 21")


def test_validation_error_detail_is_capped() -> None:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/many")
    def many(body: Many) -> None:
        return None

    response = TestClient(app).post("/many", json={"values": ["x"] * 15})
    detail = assert_problem(response, 400)["detail"]
    assert detail.count("Input should be a valid integer") == 10
    assert detail.endswith("(+5 more errors)")


def test_unhandled_exception_is_500_without_leaking(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="sol013.problem"):
        response = client.get("/crash")
    body = assert_problem(response, 500)
    assert body == {"title": "Internal Server Error", "status": 500, "detail": "internal error"}
    assert "postgres" not in response.text
    # The traceback is logged for operators.
    assert any(record.exc_info for record in caplog.records)
    assert "RuntimeError" in caplog.text
