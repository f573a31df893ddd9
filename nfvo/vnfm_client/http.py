"""A SOL003 VNFM driven over HTTP: ``{apiRoot}/vnflcm/v2``, as ETSI GS NFV-SOL 003 defines it.

- **Authentication**: OAuth 2.0 client credentials (`nfvo.vnfm_client.oauth`), a bearer
  token on every call; a 401 gets one new token and one more try (the call was refused, so
  repeating it is safe whatever the method).
- **Versions** (SOL013 clause 9): every call says ``Version: 2.3.0``, the VNF LCM API
  version of `vnfm.schemas`; a VNFM that does not serve it answers 406.
- **Retries**: only calls that can be repeated without changing the outcome (GET, DELETE)
  are retried, on a connection failure or 502/503/504/429 (honouring ``Retry-After``), with
  exponential backoff; a POST is never repeated. What is still unavailable is `Unavailable`.
- **Answers**: a ProblemDetails becomes the typed error of its status; a new operation's id
  is read from ``Location``; bodies are validated as the SOL003 models, ignoring attributes
  a newer VNFM adds (SOL013 clause 4.4: unknown attributes are ignored).
- **TLS**: the VNFM's certificate is verified (system CAs, or the record's ``ca_file``)
  unless the record says not to.
"""

from __future__ import annotations

import copy
import logging
import random
import ssl
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ValidationError

from nfvo.vnfm_client.callbacks import NotificationEndpoint
from nfvo.vnfm_client.errors import (
    Unavailable,
    VnfmError,
    VnfmProtocolError,
    error_for,
)
from nfvo.vnfm_client.interface import OpTask, PollPolicy, VnfmClient
from nfvo.vnfm_client.oauth import ClientCredentials
from nfvo.vnfm_client.registry import VnfmRecord
from sol013.problem import ProblemDetails
from vnfm.schemas import (
    API_VERSION,
    CancelMode,
    CancelModeType,
    CreateVnfRequest,
    LccnSubscription,
    LccnSubscriptionRequest,
    LcmOperationType,
    VnfInstance,
    VnfLcmOpOcc,
)

__all__ = ["HttpVnfmClient", "RetryPolicy"]

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
LCM = "/vnflcm/v2"
INSTANCES = f"{LCM}/vnf_instances"
OP_OCCS = f"{LCM}/vnf_lcm_op_occs"
SUBSCRIPTIONS = f"{LCM}/subscriptions"
_TASK_PATHS: dict[LcmOperationType, str] = {
    LcmOperationType.INSTANTIATE: "instantiate",
    LcmOperationType.SCALE: "scale",
    LcmOperationType.SCALE_TO_LEVEL: "scale_to_level",
    LcmOperationType.HEAL: "heal",
    LcmOperationType.TERMINATE: "terminate",
    LcmOperationType.OPERATE: "operate",
    LcmOperationType.CHANGE_EXT_CONN: "change_ext_conn",
    LcmOperationType.CHANGE_FLAVOUR: "change_flavour",
}
_RETRY_STATUSES = frozenset({429, 502, 503, 504})
_IDEMPOTENT = frozenset({"GET", "DELETE"})
_MAX_ERROR_TEXT = 300
# A list longer than this many pages is a VNFM that keeps sending "next".
_MAX_PAGES = 1000


class RetryPolicy(BaseModel):
    """Retries of idempotent calls: ``attempts`` in all, waiting ``base_delay`` x 2^n (with
    +-20 % jitter), never more than ``max_delay`` (nor what Retry-After asks beyond it)."""

    attempts: int = 4
    base_delay: float = 0.2
    max_delay: float = 5.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        nominal = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        wanted = nominal * random.uniform(0.8, 1.2)
        if retry_after is not None:
            wanted = max(wanted, retry_after)
        return min(wanted, self.max_delay)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _problem(status: int, detail: str) -> ProblemDetails:
    return ProblemDetails(status=status, detail=detail)


def _drop(data: Any, loc: tuple[int | str, ...]) -> None:
    """Remove the attribute at ``loc`` (a pydantic error location) from nested JSON."""
    node = data
    for step in loc[:-1]:
        node = node[step]
    if isinstance(node, dict):
        node.pop(loc[-1], None)


def parse_lenient(model: type[M], data: Any, what: str) -> M:
    """``data`` as ``model``, attributes the model does not know ignored; else a protocol error.

    The SOL003 models refuse unknown attributes (right for requests the VNFM receives), but a
    consumer must ignore what a newer or extended producer adds.
    """
    try:
        return model.model_validate(data)
    except ValidationError as first:
        errors = first.errors()
        unknown = [tuple(e["loc"]) for e in errors if e["type"] == "extra_forbidden"]
        if not unknown or len(unknown) != len(errors):
            raise VnfmProtocolError(_problem(502, f"{what} is not valid: {first}")) from None
    trimmed = copy.deepcopy(data)
    for loc in unknown:
        _drop(trimmed, loc)
    try:
        return model.model_validate(trimmed)
    except ValidationError as second:
        raise VnfmProtocolError(_problem(502, f"{what} is not valid: {second}")) from None


def _tls(record: VnfmRecord) -> ssl.SSLContext | bool:
    if not record.verify_tls:
        return False
    return ssl.create_default_context(cafile=str(record.ca_file) if record.ca_file else None)


class HttpVnfmClient(VnfmClient):
    """`VnfmClient` calling a SOL003 VNFM's REST API."""

    def __init__(
        self,
        record: VnfmRecord,
        *,
        endpoint: NotificationEndpoint | None = None,
        poll: PollPolicy | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if record.kind != "http":
            raise ValueError(f"VNFM {record.id} is {record.kind}, not reached over HTTP")
        super().__init__(
            record.id,
            endpoint=endpoint,
            notification_auth=record.notification_auth,
            poll=poll,
        )
        self.record = record
        self.retry_policy = retry or RetryPolicy()
        self._base = record.api_base
        self._http = httpx.Client(
            timeout=httpx.Timeout(record.timeout_seconds),
            verify=_tls(record),
            follow_redirects=False,
        )
        self._credentials: ClientCredentials | None = None
        token_url = record.token_endpoint
        if token_url is not None and record.client_id and record.client_secret is not None:
            self._credentials = ClientCredentials(
                self._http, token_url, record.client_id, record.client_secret, record.scopes
            )

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._http.close()

    # -- one call --------------------------------------------------------------------------

    def _url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        return f"{self._base}{path_or_url}"

    def _send_once(
        self, method: str, url: str, body: Any, params: Mapping[str, str] | None
    ) -> httpx.Response:
        headers = {"Version": API_VERSION, "Accept": "application/json"}
        token = self._credentials.token() if self._credentials is not None else None
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        response = self._http.request(method, url, json=body, params=params, headers=headers)
        if response.status_code == 401 and token is not None and self._credentials is not None:
            # Refused before anything was done: a new token and one more try are safe.
            self._credentials.invalidate(token)
            headers["Authorization"] = f"Bearer {self._credentials.token()}"
            response = self._http.request(method, url, json=body, params=params, headers=headers)
        return response

    def _call(
        self,
        method: str,
        path_or_url: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        expected: tuple[int, ...] = (200,),
    ) -> httpx.Response:
        url = self._url(path_or_url)
        attempts = self.retry_policy.attempts if method in _IDEMPOTENT else 1
        maybe_done = False
        for attempt in range(1, attempts + 1):
            try:
                response = self._send_once(method, url, body, params)
            except httpx.TransportError as exc:
                # A DELETE whose answer was lost may have been done: 404 then means success.
                maybe_done = maybe_done or not isinstance(exc, httpx.ConnectError)
                if attempt < attempts:
                    time.sleep(self.retry_policy.delay(attempt, None))
                    continue
                detail = f"VNFM {self.vnfm_id}: {method} {url} failed: {exc!r}"
                raise Unavailable(_problem(503, detail)) from None
            status = response.status_code
            if status in _RETRY_STATUSES and attempt < attempts:
                wait = _retry_after(response.headers.get("retry-after"))
                time.sleep(self.retry_policy.delay(attempt, wait))
                continue
            if status == 404 and method == "DELETE" and maybe_done:
                return response
            if status not in expected:
                raise self._refusal(method, url, response)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _refusal(self, method: str, url: str, response: httpx.Response) -> VnfmError:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("detail"), str):
            return error_for(status, body["detail"], body)
        text = response.text[:_MAX_ERROR_TEXT].strip()
        detail = f"{method} {url} answered HTTP {status}" + (f": {text}" if text else "")
        if status < 400:
            return VnfmProtocolError(_problem(502, f"{detail} (unexpected status)"))
        return error_for(status, detail)

    def _json(self, response: httpx.Response, what: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise VnfmProtocolError(_problem(502, f"{what} is not JSON")) from None

    def _created_id(self, response: httpx.Response, collection: str) -> str:
        """The id at the end of ``Location``, which must name a member of ``collection``."""
        location: str | None = response.headers.get("location")
        if not location:
            detail = f"the VNFM answered {response.status_code} without a Location header"
            raise VnfmProtocolError(_problem(502, detail))
        path = urlsplit(location).path.rstrip("/")
        parent, _, member = path.rpartition("/")
        if not member or not parent.endswith(collection):
            detail = f"Location {location!r} does not name a member of {collection}"
            raise VnfmProtocolError(_problem(502, detail))
        return member

    # -- instances -------------------------------------------------------------------------

    def _create_instance(
        self,
        vnfd_id: str,
        name: str | None,
        description: str | None,
        metadata: dict[str, object] | None,
    ) -> VnfInstance:
        request = CreateVnfRequest(
            vnfdId=vnfd_id,
            vnfInstanceName=name,
            vnfInstanceDescription=description,
            metadata=metadata,
        )
        body = request.model_dump(mode="json", by_alias=True, exclude_none=True)
        response = self._call("POST", INSTANCES, body=body, expected=(201,))
        return parse_lenient(VnfInstance, self._json(response, "VnfInstance"), "VnfInstance")

    def _get_instance(self, instance_id: str) -> VnfInstance:
        response = self._call("GET", f"{INSTANCES}/{instance_id}")
        return parse_lenient(VnfInstance, self._json(response, "VnfInstance"), "VnfInstance")

    def _list_instances(self, filter: str | None) -> list[VnfInstance]:
        # Lists leave complex attributes out by default; the models need them all.
        params = {"all_fields": ""}
        if filter:
            params["filter"] = filter
        found: list[VnfInstance] = []
        url: str | None = INSTANCES
        for _ in range(_MAX_PAGES):
            if url is None:
                return found
            response = self._call("GET", url, params=params if url == INSTANCES else None)
            page = self._json(response, "the VnfInstance list")
            if not isinstance(page, list):
                raise VnfmProtocolError(_problem(502, "the VnfInstance list is not an array"))
            found.extend(parse_lenient(VnfInstance, item, "VnfInstance") for item in page)
            url = response.links.get("next", {}).get("url")
        raise VnfmProtocolError(_problem(502, f"the instance list goes on past {_MAX_PAGES} pages"))

    def _delete_instance(self, instance_id: str) -> None:
        self._call("DELETE", f"{INSTANCES}/{instance_id}", expected=(204,))

    # -- operations ------------------------------------------------------------------------

    def _start(self, instance_id: str, operation: LcmOperationType, request: BaseModel) -> str:
        body = request.model_dump(mode="json", by_alias=True, exclude_none=True)
        path = f"{INSTANCES}/{instance_id}/{_TASK_PATHS[operation]}"
        response = self._call("POST", path, body=body, expected=(202,))
        return self._created_id(response, OP_OCCS)

    def get_op_occ(self, op_id: str) -> VnfLcmOpOcc:
        response = self._call("GET", f"{OP_OCCS}/{op_id}")
        return parse_lenient(VnfLcmOpOcc, self._json(response, "VnfLcmOpOcc"), "VnfLcmOpOcc")

    def _op_task(
        self, op_id: str, task: OpTask, mode: CancelModeType | None = None
    ) -> VnfLcmOpOcc | None:
        path = f"{OP_OCCS}/{op_id}/{task}"
        if task == "fail":
            response = self._call("POST", path, expected=(200,))
            return parse_lenient(VnfLcmOpOcc, self._json(response, "VnfLcmOpOcc"), "VnfLcmOpOcc")
        body = None
        if task == "cancel":
            body = CancelMode(cancelMode=mode or CancelModeType.GRACEFUL).model_dump(mode="json")
        self._call("POST", path, body=body, expected=(202,))
        return None

    # -- subscriptions ---------------------------------------------------------------------

    def _create_subscription(self, request: LccnSubscriptionRequest) -> tuple[str, bool]:
        body = request.model_dump(mode="json", by_alias=True, exclude_none=True)
        response = self._call("POST", SUBSCRIPTIONS, body=body, expected=(201, 303))
        if response.status_code == 303:
            return self._created_id(response, SUBSCRIPTIONS), False
        created = parse_lenient(
            LccnSubscription, self._json(response, "LccnSubscription"), "LccnSubscription"
        )
        return created.id, True

    def _delete_subscription(self, subscription_id: str) -> None:
        self._call("DELETE", f"{SUBSCRIPTIONS}/{subscription_id}", expected=(204,))
