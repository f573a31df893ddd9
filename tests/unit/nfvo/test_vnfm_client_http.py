"""HttpVnfmClient's protocol handling, against a scripted SOL003 VNFM on 127.0.0.1.

The scripted server is a stand-in for a third-party VNFM that misbehaves on cue (503s, lost
answers, expired tokens, missing headers), which our own VNFM cannot be made to do. The
client against our real VNFM is tested by the contract suite
(tests/integration/vnfm_client/).
"""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

import pytest
from pydantic import SecretStr

from nfvo.vnfm_client import (
    Conflict,
    Forbidden,
    NotFound,
    Unavailable,
    VnfmError,
    VnfmProtocolError,
    VnfmRecord,
)
from nfvo.vnfm_client.http import HttpVnfmClient, RetryPolicy
from tests.support.http_server import serving
from vnfm.schemas import API_VERSION, ScaleVnfRequest

INSTANCES = "/vnflcm/v2/vnf_instances"
OP_OCCS = "/vnflcm/v2/vnf_lcm_op_occs"
FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)
SCALE_OUT = ScaleVnfRequest.model_validate({"type": "SCALE_OUT", "aspectId": "fastpath"})
OP = {
    "id": "op-1",
    "operationState": "PROCESSING",
    "stateEnteredTime": "2024-05-01T10:00:00Z",
    "startTime": "2024-05-01T10:00:00Z",
    "vnfInstanceId": "i-1",
    "operation": "SCALE",
    "isAutomaticInvocation": False,
    "isCancelPending": False,
    "_links": {"self": {"href": "h"}, "vnfInstance": {"href": "h"}},
}

Answer = tuple[int, dict[str, str], Any]  # status, headers, JSON body (None: empty); or "drop"


@dataclass
class Vnfm:
    """What the scripted VNFM answers, per "METHOD /path", in order; and what it was asked."""

    script: dict[str, list[Answer | str]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    tokens: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on(self, request: str, *answers: Answer | str) -> None:
        self.script.setdefault(request, []).extend(answers)

    def asked(self, request: str) -> list[dict[str, str]]:
        method, path = request.split(" ", 1)
        return [h for m, p, h, _ in self.requests if m == method and p.split("?")[0] == path]


def _handler(vnfm: Vnfm) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length) if length else b""
            path = self.path.split("?")[0]
            with vnfm.lock:
                vnfm.requests.append((self.command, self.path, dict(self.headers.items()), body))
                if path == "/oauth2/token":
                    vnfm.tokens += 1
                    answer: Answer | str = (
                        200,
                        {},
                        {"access_token": f"t{vnfm.tokens}", "token_type": "Bearer"},
                    )
                    form = parse_qs(body.decode())
                    assert form["grant_type"] == ["client_credentials"]
                else:
                    queue = vnfm.script.get(f"{self.command} {path}", [])
                    answer = queue.pop(0) if queue else (404, {}, {"status": 404, "detail": "?"})
            if answer == "drop":
                self.close_connection = True
                return  # no answer at all: the client sees the connection close
            assert not isinstance(answer, str)
            status, headers, payload = answer
            raw = json.dumps(payload).encode() if payload is not None else b""
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(raw)))
            if raw:
                self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = do_DELETE = _serve

    return Handler


@pytest.fixture
def vnfm() -> Iterator[tuple[Vnfm, str]]:
    state = Vnfm()
    with serving(_handler(state)) as url:
        yield state, url


def _client(url: str, **fields: Any) -> HttpVnfmClient:
    values: dict[str, Any] = {
        "id": "scripted",
        "kind": "http",
        "api_root": url,
        "client_id": "nfvo",
        "client_secret": SecretStr("pw"),
        **fields,
    }
    return HttpVnfmClient(VnfmRecord(**values), retry=FAST)


def test_calls_carry_the_version_and_a_token_fetched_once(vnfm: tuple[Vnfm, str]) -> None:
    state, url = vnfm
    state.on(f"GET {OP_OCCS}/op-1", (200, {}, OP), (200, {}, OP))
    with _client(url, scopes=("vnflcm:v2:all", "extra")) as client:
        assert client.get_op_occ("op-1").id == "op-1"
        client.get_op_occ("op-1")
    token_request = state.asked("POST /oauth2/token")
    assert len(token_request) == 1
    user, _, password = (
        base64.b64decode(token_request[0]["Authorization"].split()[1]).decode().partition(":")
    )
    assert (user, password) == ("nfvo", "pw")
    body = state.requests[0][3].decode()
    assert parse_qs(body)["scope"] == ["vnflcm:v2:all extra"]
    for headers in state.asked(f"GET {OP_OCCS}/op-1"):
        assert headers["Version"] == API_VERSION
        assert headers["Authorization"] == "Bearer t1"


def test_a_refused_token_is_replaced_once(vnfm: tuple[Vnfm, str]) -> None:
    state, url = vnfm
    state.on(f"GET {OP_OCCS}/op-1", (401, {}, {"status": 401, "detail": "expired"}), (200, {}, OP))
    with _client(url) as client:
        assert client.get_op_occ("op-1").operationState.value == "PROCESSING"
    assert [h["Authorization"] for h in state.asked(f"GET {OP_OCCS}/op-1")] == [
        "Bearer t1",
        "Bearer t2",
    ]
    state.on(f"GET {OP_OCCS}/op-1", *[(401, {}, {"status": 401, "detail": "no"})] * 2)
    with _client(url) as client, pytest.raises(Forbidden):
        client.get_op_occ("op-1")


def test_reads_are_retried_while_the_vnfm_is_unavailable(vnfm: tuple[Vnfm, str]) -> None:
    state, url = vnfm
    busy = (503, {"Retry-After": "0"}, {"status": 503, "detail": "busy"})
    state.on(f"GET {OP_OCCS}/op-1", busy, "drop", (200, {}, OP))
    with _client(url) as client:
        assert client.get_op_occ("op-1").id == "op-1"
    assert len(state.asked(f"GET {OP_OCCS}/op-1")) == 3
    state.on(f"GET {OP_OCCS}/op-1", busy, busy, busy)
    with _client(url) as client, pytest.raises(Unavailable) as raised:
        client.get_op_occ("op-1")
    assert raised.value.retryable and raised.value.detail == "busy"


def test_a_task_is_never_repeated(vnfm: tuple[Vnfm, str]) -> None:
    state, url = vnfm
    path = f"{INSTANCES}/i-1/scale"
    state.on(f"POST {path}", (503, {}, {"status": 503, "detail": "no worker"}), "drop")
    with _client(url) as client:
        with pytest.raises(Unavailable):
            client.scale("i-1", SCALE_OUT)
        with pytest.raises(Unavailable):
            client.scale("i-1", SCALE_OUT)
    assert len(state.asked(f"POST {path}")) == 2  # one per call, none repeated


def test_a_delete_whose_answer_was_lost_is_done(vnfm: tuple[Vnfm, str]) -> None:
    state, url = vnfm
    state.on(f"DELETE {INSTANCES}/i-1", "drop", (404, {}, {"status": 404, "detail": "gone"}))
    with _client(url) as client:
        client.delete_vnf_instance("i-1")
        state.on(f"DELETE {INSTANCES}/i-1", (404, {}, {"status": 404, "detail": "gone"}))
        with pytest.raises(NotFound):
            client.delete_vnf_instance("i-1")


def test_an_unreachable_vnfm_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the block ends: nothing listens there
    client = HttpVnfmClient(
        VnfmRecord(id="gone", kind="http", api_root=f"http://127.0.0.1:{port}"), retry=FAST
    )
    with client, pytest.raises(Unavailable) as raised:
        client.get_op_occ("op-1")
    assert "ConnectError" in raised.value.detail


def test_answers_become_typed_errors_or_protocol_errors(vnfm: tuple[Vnfm, str]) -> None:
    state, url = vnfm
    conflict = {"status": 409, "detail": "operation o-9 in progress", "title": "Conflict"}
    state.on(f"POST {OP_OCCS}/op-1/retry", (409, {}, conflict))
    state.on(f"POST {OP_OCCS}/op-1/rollback", (202, {}, None))
    state.on(f"POST {OP_OCCS}/op-1/fail", (500, {}, None))
    state.on(f"GET {OP_OCCS}/op-2", (200, {}, {"id": "op-2"}))
    with _client(url) as client:
        with pytest.raises(Conflict) as raised:
            client.retry("op-1")
        assert raised.value.detail == "operation o-9 in progress"
        client.rollback("op-1")
        with pytest.raises(VnfmError) as failed:
            client.fail("op-1")
        assert failed.value.status == 500 and "HTTP 500" in failed.value.detail
        with pytest.raises(VnfmProtocolError):
            client.get_op_occ("op-2")


def test_a_task_answer_must_say_where_the_occurrence_is(vnfm: tuple[Vnfm, str]) -> None:
    state, url = vnfm
    path = f"{INSTANCES}/i-1/scale"
    state.on(f"POST {path}", (202, {}, None))
    state.on(f"POST {path}", (202, {"Location": f"{url}{INSTANCES}/i-1"}, None))
    state.on(f"POST {path}", (202, {"Location": f"{url}{OP_OCCS}/op-7"}, None))
    with _client(url) as client:
        with pytest.raises(VnfmProtocolError, match="without a Location"):
            client.scale("i-1", SCALE_OUT)
        with pytest.raises(VnfmProtocolError, match="does not name"):
            client.scale("i-1", SCALE_OUT)
        assert client.scale("i-1", SCALE_OUT) == "op-7"
    sent = json.loads(state.requests[-1][3])
    assert sent == {"type": "SCALE_OUT", "aspectId": "fastpath", "numberOfSteps": 1}
