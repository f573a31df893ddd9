"""NotificationClient against a real HTTP notification endpoint on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from sol013.notify import (
    CallbackTestError,
    NotificationClient,
    RetryPolicy,
    SubscriptionAuthentication,
)
from tests.support.http_server import serving

TOKEN_CLIENT = "cb-client"
TOKEN_SECRET = "cb secret+/"  # needs form-encoding under RFC 6749 2.3.1


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Endpoint:
    """What the fake subscriber answers; mutated by tests, read by the server thread."""

    get_status: int = 204
    post_statuses: list[int] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    tokens_issued: list[str] = field(default_factory=list)
    valid_tokens: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def posts(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and r.path == path]


def _handler(state: Endpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: bytes = b"", ctype: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            if body:
                self.send_header("Content-Type", ctype)
            self.end_headers()
            self.wfile.write(body)

        def _record(self) -> Recorded:
            length = int(self.headers.get("Content-Length", "0"))
            rec = Recorded(self.command, self.path, dict(self.headers), self.rfile.read(length))
            with state.lock:
                state.requests.append(rec)
            return rec

        def do_GET(self) -> None:
            self._record()
            self._answer(state.get_status)

        def do_POST(self) -> None:
            rec = self._record()
            if self.path == "/token":
                self._token(rec)
                return
            if self.path.startswith("/oauth/"):
                auth = self.headers.get("Authorization", "")
                if auth.removeprefix("Bearer ") not in state.valid_tokens:
                    self._answer(401)
                    return
            with state.lock:
                status = state.post_statuses.pop(0) if state.post_statuses else 204
            self._answer(status, b'{"detail":"scripted"}' if status >= 400 else b"")

        def _token(self, rec: Recorded) -> None:
            expected = base64.b64encode(b"cb-client:cb+secret%2B%2F").decode()
            form = parse_qs(rec.body.decode())
            if self.headers.get("Authorization") != f"Basic {expected}":
                self._answer(401, b'{"error":"invalid_client"}')
                return
            if form.get("grant_type") != ["client_credentials"]:
                self._answer(400, b'{"error":"unsupported_grant_type"}')
                return
            with state.lock:
                token = f"tok-{len(state.tokens_issued) + 1}"
                state.tokens_issued.append(token)
                state.valid_tokens.add(token)
            body = {"access_token": token, "token_type": "Bearer", "expires_in": 3600}
            self._answer(200, json.dumps(body).encode())

    return Handler


@pytest.fixture
def endpoint() -> Iterator[tuple[Endpoint, str]]:
    state = Endpoint()
    with serving(_handler(state)) as url:
        yield state, url


def _oauth(base: str) -> SubscriptionAuthentication:
    return SubscriptionAuthentication.model_validate(
        {
            "authType": ["OAUTH2_CLIENT_CREDENTIALS"],
            "paramsOauth2ClientCredentials": {
                "clientId": TOKEN_CLIENT,
                "clientPassword": TOKEN_SECRET,
                "tokenEndpoint": f"{base}/token",
            },
        }
    )


def _basic() -> SubscriptionAuthentication:
    return SubscriptionAuthentication.model_validate(
        {"authType": ["BASIC"], "paramsBasic": {"userName": "alice", "password": "s3cret"}}
    )


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


# --- SubscriptionAuthentication ------------------------------------------------


def test_auth_requires_params_of_each_listed_type() -> None:
    with pytest.raises(ValidationError, match="paramsBasic is required"):
        SubscriptionAuthentication.model_validate({"authType": ["BASIC"]})
    with pytest.raises(ValidationError, match="paramsOauth2ClientCredentials is required"):
        SubscriptionAuthentication.model_validate(
            {
                "authType": ["BASIC", "OAUTH2_CLIENT_CREDENTIALS"],
                "paramsBasic": {"userName": "u", "password": "p"},
            }
        )


def test_auth_rejects_unknown_type_empty_list_and_stray_params() -> None:
    with pytest.raises(ValidationError):
        SubscriptionAuthentication.model_validate({"authType": ["DIGEST"]})
    with pytest.raises(ValidationError):
        SubscriptionAuthentication.model_validate({"authType": []})
    with pytest.raises(ValidationError, match="shall be absent"):
        SubscriptionAuthentication.model_validate(
            {"authType": ["TLS_CERT"], "paramsBasic": {"userName": "u", "password": "p"}}
        )


def test_auth_validates_token_endpoint_and_hides_secrets() -> None:
    with pytest.raises(ValidationError, match="tokenEndpoint"):
        SubscriptionAuthentication.model_validate(
            {
                "authType": ["OAUTH2_CLIENT_CREDENTIALS"],
                "paramsOauth2ClientCredentials": {
                    "clientId": "c",
                    "clientPassword": "p",
                    "tokenEndpoint": "not a url",
                },
            }
        )
    auth = _basic()
    assert "s3cret" not in repr(auth)
    assert auth.model_dump(exclude_none=True) == {
        "authType": ["BASIC"],
        "paramsBasic": {"userName": "alice", "password": "s3cret"},
    }


# --- RetryPolicy ----------------------------------------------------------------


def test_retry_policy_grows_exponentially_within_jitter_and_cap() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=10.0, jitter=0.2)
    for attempt, nominal in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0)):
        for _ in range(50):
            assert nominal * 0.8 <= policy.delay(attempt) <= nominal * 1.2
    assert all(8.0 <= policy.delay(n) <= 10.0 for n in (5, 20, 10_000))
    assert RetryPolicy(jitter=0.0).delay(3) == 4.0


def test_retry_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(base_delay=10, max_delay=1)
    with pytest.raises(ValueError):
        RetryPolicy(jitter=1.5)


# --- endpoint test (GET) --------------------------------------------------------


def test_endpoint_test_accepts_204(endpoint: tuple[Endpoint, str]) -> None:
    state, base = endpoint

    async def scenario() -> None:
        async with NotificationClient() as client:
            await client.test_endpoint(f"{base}/cb", _basic(), version="2.1.0")

    _run(scenario())
    (req,) = state.requests
    assert req.method == "GET" and req.path == "/cb"
    assert req.headers["Version"] == "2.1.0"
    assert req.headers["Authorization"] == "Basic " + base64.b64encode(b"alice:s3cret").decode()


def test_endpoint_test_reports_wrong_status(endpoint: tuple[Endpoint, str]) -> None:
    state, base = endpoint
    state.get_status = 404

    async def scenario() -> None:
        async with NotificationClient() as client:
            await client.test_endpoint(f"{base}/cb", None)

    with pytest.raises(CallbackTestError, match=r"HTTP 404, expected 204"):
        _run(scenario())


def test_endpoint_test_reports_connection_refused() -> None:
    # Bound but not listening: connecting is refused, and nobody can take the port.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{sock.getsockname()[1]}/cb"

        async def scenario() -> None:
            async with NotificationClient(timeout=2.0) as client:
                await client.test_endpoint(uri, None)

        with pytest.raises(
            CallbackTestError, match=r"cannot reach notification endpoint .*Connect"
        ):
            _run(scenario())


# --- deliveries -----------------------------------------------------------------


def test_deliver_basic_sends_json_with_basic_auth(endpoint: tuple[Endpoint, str]) -> None:
    state, base = endpoint
    payload = {"notificationType": "VnfPackageChangeNotification", "id": "n1"}

    async def scenario() -> Any:
        async with NotificationClient() as client:
            return await client.deliver(f"{base}/cb", _basic(), payload)

    result = _run(scenario())
    assert result.ok and result.status == 204 and result.error is None
    (req,) = state.posts("/cb")
    assert json.loads(req.body) == payload
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["Authorization"] == "Basic " + base64.b64encode(b"alice:s3cret").decode()


def test_deliver_oauth_fetches_caches_and_refreshes_token(endpoint: tuple[Endpoint, str]) -> None:
    state, base = endpoint
    auth = _oauth(base)

    async def scenario() -> list[Any]:
        async with NotificationClient() as client:
            results = [await client.deliver(f"{base}/oauth/cb", auth, {"n": i}) for i in range(3)]
            # Concurrent deliveries share the cached token too.
            results += await asyncio.gather(
                *(client.deliver(f"{base}/oauth/cb", auth, {"n": i}) for i in range(3, 6))
            )
            state.valid_tokens.clear()  # the subscriber revokes: 401 -> one refresh
            results.append(await client.deliver(f"{base}/oauth/cb", auth, {"n": 6}))
            return results

    results = _run(scenario())
    assert all(r.ok for r in results)
    assert state.tokens_issued == ["tok-1", "tok-2"]
    auths = [r.headers["Authorization"] for r in state.posts("/oauth/cb")]
    assert auths[:6] == ["Bearer tok-1"] * 6
    assert auths[6:] == ["Bearer tok-1", "Bearer tok-2"]
    (token_req, *_) = state.posts("/token")
    assert parse_qs(token_req.body.decode()) == {"grant_type": ["client_credentials"]}


def test_deliver_oauth_bad_client_credentials_are_not_retryable(
    endpoint: tuple[Endpoint, str],
) -> None:
    _state, base = endpoint
    auth = _oauth(base)
    assert auth.paramsOauth2ClientCredentials is not None
    auth.paramsOauth2ClientCredentials.clientPassword = "wrong"

    async def scenario() -> Any:
        async with NotificationClient() as client:
            return await client.deliver(f"{base}/oauth/cb", auth, {})

    result = _run(scenario())
    assert not result.ok and not result.retryable
    assert "token endpoint" in result.error and "401" in result.error


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(400, False), (404, False), (401, False), (408, True), (429, True), (500, True), (503, True)],
)
def test_deliver_classifies_error_statuses(
    endpoint: tuple[Endpoint, str], status: int, retryable: bool
) -> None:
    state, base = endpoint
    state.post_statuses = [status]

    async def scenario() -> Any:
        async with NotificationClient() as client:
            return await client.deliver(f"{base}/cb", None, {})

    result = _run(scenario())
    assert (result.ok, result.status, result.retryable) == (False, status, retryable)
    assert result.error.startswith(f"HTTP {status}")


def test_deliver_connection_refused_is_retryable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{sock.getsockname()[1]}/cb"

        async def scenario() -> Any:
            async with NotificationClient(timeout=2.0) as client:
                return await client.deliver(uri, None, {})

        result = _run(scenario())
    assert not result.ok and result.retryable and result.status is None
    assert "connection failed" in result.error


# --- mutual TLS -----------------------------------------------------------------


def _self_signed(tmp_path: Path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nfv-mano")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "client.crt", tmp_path / "client.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


def test_tls_cert_needs_a_configured_client_certificate(tmp_path: Path) -> None:
    tls_only = SubscriptionAuthentication.model_validate({"authType": ["TLS_CERT"]})

    async def scenario() -> tuple[Any, bool]:
        async with NotificationClient() as plain:
            result = await plain.deliver("https://127.0.0.1:1/cb", tls_only, {})
        async with NotificationClient(client_cert=_self_signed(tmp_path)) as mtls:
            return result, mtls.has_client_cert

    result, has_cert = _run(scenario())
    assert not result.ok and not result.retryable
    assert "no client certificate" in result.error
    assert has_cert
