"""Client of the Tap2 Personalize API's merchant-backend calls."""

import json
import re
import time
import uuid
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, cast
from urllib.parse import quote, urlencode

from . import __version__
from ._transport import RetryPolicy, Transport, error_from_response, http_transport, send_with_retries
from .errors import Tap2Error
from .types import (
    BatchAccepted,
    CheckoutSession,
    ConsentLog,
    CustomerRestored,
    DeletionAccepted,
    FeedbackEvent,
    FeedbackSent,
    MethodsResponse,
    OffersResponse,
    Preferences,
    PreferencesUpdated,
)

DEFAULT_BASE_URL = "https://api.tap2-personalize.com"
_UNSET: Any = object()
#: What a header value cannot hold besides a line break or NUL: anything but visible ASCII, space and tab.
_NOT_HEADER_TEXT = re.compile(r"[^\t\x20-\x7e]")


class _SecretKey:
    """The API key, shown as its prefix only: what vars(client) / client.__dict__ print (pprint, debug
    pages, loggers that dump objects) must not hold a secret key. It still pickles and copies whole,
    so a client handed to another process keeps working."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"<key {self.value[:7]}…>"

    __str__ = __repr__


def new_idempotency_key(prefix: str) -> str:
    """A key in the API's id charset ([A-Za-z0-9._:@-], at most 128 characters)."""
    return f"{prefix}_{uuid.uuid4().hex}"


class Client:
    """Calls the API with one key. Every failure raises :class:`Tap2Error`.

    429 answers, and 503 answers to a request that is safe to resend (an idempotent method, an
    Idempotency-Key, feedback with its event_id), are retried up to ``max_retries`` times, waiting
    the server's ``Retry-After`` (or an exponential backoff with jitter when it sends none); a wait
    longer than ``max_retry_delay`` seconds is not waited out. ``timeout`` is in seconds, per
    attempt (DNS lookup, connect, headers and body).
    """

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float = 10.0,
        max_retries: int = 2,
        max_retry_delay: float = 30.0,
        retry_base_delay: float = 0.25,
        transport: Optional[Transport] = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not api_key:
            raise ValueError("api_key is required")
        self._api_key = _SecretKey(api_key)
        self._base_url = base_url.rstrip("/")
        self._policy = RetryPolicy(max_retries=max_retries, timeout=timeout, base_delay=retry_base_delay, max_delay=max_retry_delay)
        self._transport: Transport = transport or http_transport
        self._sleep = sleep

    # ── personalization ────────────────────────────────────────────────────────────────────

    def get_methods(
        self,
        customer_id: Optional[str] = None,
        *,
        device_type: Optional[str] = None,
        country: Optional[str] = None,
        amount: Optional[int] = None,
        currency: Optional[str] = None,
        timezone: Optional[str] = None,
        client_secret: Optional[str] = None,
        merchant_id: Optional[str] = None,
    ) -> MethodsResponse:
        """The merchant's payment methods for this customer and context, best first."""
        query = _context_query(customer_id, device_type, country, amount, currency, timezone, client_secret, merchant_id)
        return cast(MethodsResponse, self._request("GET", "/v1/personalize/methods", query=query, shape={"methods": "array"}))

    def get_offers(
        self,
        customer_id: Optional[str] = None,
        *,
        device_type: Optional[str] = None,
        country: Optional[str] = None,
        amount: Optional[int] = None,
        currency: Optional[str] = None,
        timezone: Optional[str] = None,
        client_secret: Optional[str] = None,
        merchant_id: Optional[str] = None,
    ) -> OffersResponse:
        """Active offers for this customer and context, ranked by expected value."""
        query = _context_query(customer_id, device_type, country, amount, currency, timezone, client_secret, merchant_id)
        return cast(OffersResponse, self._request("GET", "/v1/personalize/offers", query=query, shape={"offers": "array"}))

    def send_feedback(self, event: FeedbackEvent) -> FeedbackSent:
        """Reports the method the customer paid with (204).

        Without ``event_id`` one is generated; it is the same on every retry, so the event is stored
        once. Returns the ``event_id`` used. A field set to ``None`` is not sent (the API refuses
        ``null``), so ``event_id=None`` gets a generated one too.
        """
        body = _drop_none(event)
        body.setdefault("event_id", new_idempotency_key("evt"))
        self._request("POST", "/v1/personalize/feedback", body=body, shape=None)
        return {"event_id": str(body["event_id"])}

    def send_feedback_batch(self, events: Sequence[FeedbackEvent], *, idempotency_key: Optional[str] = None) -> BatchAccepted:
        """Up to 100 events (202). Events without ``event_id`` get ids derived from the batch's
        Idempotency-Key, generated here unless given, and the same on every retry. Fields set to
        ``None`` are not sent."""
        key = idempotency_key if idempotency_key is not None else new_idempotency_key("batch")
        data = self._request(
            "POST", "/v1/personalize/feedback/batch", body={"events": [_drop_none(e) for e in events]}, headers={"Idempotency-Key": key}, shape={"accepted": "number"}
        )
        return {"accepted": int(data["accepted"]), "idempotency_key": key}

    def get_preferences(self, customer_id: str, *, merchant_id: Optional[str] = None) -> Preferences:
        """Stored preferences, or the defaults for a customer with none."""
        query = _drop_none({"customer_id": customer_id, "merchant_id": merchant_id})
        return cast(Preferences, self._request("GET", "/v1/personalize/preferences", query=query))

    def put_preferences(
        self,
        customer_id: str,
        *,
        default_method: Optional[str] = _UNSET,
        favorite_methods: Optional[List[str]] = None,
        excluded_methods: Optional[List[str]] = None,
        personalization_enabled: Optional[bool] = None,
        cross_merchant_consent: Optional[bool] = None,
        merchant_id: Optional[str] = None,
    ) -> PreferencesUpdated:
        """Changes the given fields; the others keep their values. ``default_method=None`` clears it."""
        body: Dict[str, Any] = _drop_none(
            {
                "customer_id": customer_id,
                "merchant_id": merchant_id,
                "favorite_methods": favorite_methods,
                "excluded_methods": excluded_methods,
                "personalization_enabled": personalization_enabled,
                "cross_merchant_consent": cross_merchant_consent,
            }
        )
        if default_method is not _UNSET:
            body["default_method"] = default_method
        return cast(PreferencesUpdated, self._request("PUT", "/v1/personalize/preferences", body=body, shape={"preferences": "object"}))

    def get_consent(self, customer_id: str, *, merchant_id: Optional[str] = None) -> ConsentLog:
        """The customer's consent log, oldest first."""
        query = _drop_none({"customer_id": customer_id, "merchant_id": merchant_id})
        return cast(ConsentLog, self._request("GET", "/v1/personalize/consent", query=query, shape={"entries": "array"}))

    # ── checkout sessions ──────────────────────────────────────────────────────────────────

    def create_checkout_session(
        self,
        customer_id: str,
        *,
        amount: Optional[int] = None,
        currency: Optional[str] = None,
        country: Optional[str] = None,
        device_type: Optional[str] = None,
        expires_in: Optional[int] = None,
        merchant_id: Optional[str] = None,
        idempotency_key: Optional[str] = None,
    ) -> CheckoutSession:
        """Opens a checkout session; hand its ``client_secret`` to the checkout page (secret key).
        An Idempotency-Key, generated here unless given, goes with every retry, so a retry answers
        the same session instead of opening a second one."""
        body = _drop_none(
            {
                "customer_id": customer_id,
                "merchant_id": merchant_id,
                "amount": amount,
                "currency": currency,
                "country": country,
                "device_type": device_type,
                "expires_in": expires_in,
            }
        )
        key = idempotency_key if idempotency_key is not None else new_idempotency_key("cs")
        return cast(CheckoutSession, self._request("POST", "/v1/checkout/sessions", body=body, headers={"Idempotency-Key": key}, shape={"client_secret": "string"}))

    # ── customer data rights ───────────────────────────────────────────────────────────────

    def delete_customer(self, customer_id: str, *, merchant_id: Optional[str] = None) -> DeletionAccepted:
        """Starts the deletion (202); the data is purged after the grace period."""
        query = _drop_none({"merchant_id": merchant_id})
        return cast(DeletionAccepted, self._request("DELETE", f"/v1/personalize/customers/{_segment(customer_id)}", query=query))

    def restore_customer(self, customer_id: str, *, merchant_id: Optional[str] = None) -> CustomerRestored:
        """Cancels a pending deletion within the grace period (404 NOT_FOUND after the purge)."""
        query = _drop_none({"merchant_id": merchant_id})
        return cast(CustomerRestored, self._request("POST", f"/v1/personalize/customers/{_segment(customer_id)}/restore", query=query))

    def export_customer(self, customer_id: str, *, merchant_id: Optional[str] = None) -> Dict[str, Any]:
        """Everything stored about the customer for this merchant: preferences, usage events, consent log."""
        query = _drop_none({"merchant_id": merchant_id})
        return self._request("GET", f"/v1/personalize/customers/{_segment(customer_id)}/export", query=query)

    # ── analytics and catalog ──────────────────────────────────────────────────────────────

    def get_analytics_summary(self, *, from_: Optional[str] = None, to: Optional[str] = None, merchant_id: Optional[str] = None) -> Dict[str, Any]:
        """Treatment vs holdout over [from, to) (ISO 8601 UTC; default the last 7 days). Secret key."""
        query = _drop_none({"merchant_id": merchant_id, "from": from_, "to": to})
        return self._request("GET", "/v1/analytics/summary", query=query)

    def get_analytics_timeseries(
        self,
        metric: str,
        *,
        granularity: Optional[str] = None,
        from_: Optional[str] = None,
        to: Optional[str] = None,
        currency: Optional[str] = None,
        merchant_id: Optional[str] = None,
    ) -> Dict[str, Any]:
        """One metric per arm and hour or day, oldest first. Secret key."""
        query = _drop_none({"metric": metric, "merchant_id": merchant_id, "granularity": granularity, "from": from_, "to": to, "currency": currency})
        return self._request("GET", "/v1/analytics/timeseries", query=query, shape={"points": "array"})

    def get_payment_methods(self, *, merchant_id: Optional[str] = None) -> List[Dict[str, Any]]:
        """The catalog of payment methods."""
        query = _drop_none({"merchant_id": merchant_id})
        return cast(List[Dict[str, Any]], self._request("GET", "/v1/payment-methods", query=query, shape={"methods": "array"})["methods"])

    # ── transport ──────────────────────────────────────────────────────────────────────────

    def _request(
        self,
        method: str,
        path: str,
        *,
        query: Optional[Mapping[str, Any]] = None,
        body: Optional[Mapping[str, Any]] = None,
        headers: Optional[Mapping[str, str]] = None,
        shape: Optional[Mapping[str, str]] = _UNSET,
    ) -> Dict[str, Any]:
        """One call. ``shape``: what a success must be (see :func:`_shape_problem`); ``None`` for a
        route that promises no body (feedback, 204), whose answer is then not read."""
        if shape is _UNSET:
            shape = {}
        url = self._base_url + path + (("?" + urlencode({k: _query_value(v) for k, v in query.items()})) if query else "")
        all_headers = {"X-API-Key": self._api_key.value, "Accept": "application/json", "User-Agent": f"tap2-personalize-python/{__version__}"}
        data: Optional[bytes] = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode("utf-8")
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        for name, value in all_headers.items():
            # A line break in a value (a caller's Idempotency-Key, the key) would start another header
            # line; and HTTP carries only ASCII the same way in every client (RFC 9110 §5.5: VCHAR,
            # space, tab): http.client sends é as the byte E9, which the API reads as U+FFFD (café and
            # cafè would be one key), and raised UnicodeEncodeError for ключ. Refused here, before
            # anything is sent, in the TypeScript and PHP clients' words.
            if any(c in value for c in "\r\n\0"):
                raise ValueError(f"The {name} header cannot hold a line break or NUL")
            if _NOT_HEADER_TEXT.search(value):
                raise ValueError(f"The {name} header cannot hold a control character or a character outside ASCII")
        response = send_with_retries(self._transport, self._sleep, self._policy, method, url, all_headers, data)
        if not 200 <= response.status < 300:
            raise error_from_response(response)
        if shape is None:
            return {}
        request_id = response.headers.get("x-request-id")
        parsed: Any = None
        if response.body:
            try:
                parsed = json.loads(response.body.decode("utf-8"))
            except ValueError as err:
                raise Tap2Error("INVALID_RESPONSE", "The answer is not JSON", request_id, response.status) from err
        problem = _shape_problem(parsed, shape)
        if problem is not None:
            raise Tap2Error("INVALID_RESPONSE", f"Unexpected answer: {problem}", request_id, response.status)
        return cast(Dict[str, Any], parsed)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):  # before int: bool is an int subclass, JSON true is not a number
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object" if isinstance(value, dict) else type(value).__name__


def _shape_problem(data: Any, shape: Mapping[str, str]) -> Optional[str]:
    """What a success must be for the call to hand it back: a JSON object, with these fields of these
    JSON types (the ones the client reads, or the list the answer is for); other fields are not
    checked. The TypeScript and PHP clients check the same and name a problem in the same words."""
    if _json_type(data) != "object":
        return "not a JSON object"
    for field, kind in shape.items():
        if _json_type(data.get(field)) != kind:
            return f'"{field}" is not {"an" if kind in ("array", "object") else "a"} {kind}'
    return None


def _drop_none(values: Mapping[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _query_value(value: Any) -> Any:
    """A float with no fraction (an amount computed as ``price * 100``) as the integer it is, ``4999``
    not ``4999.0`` (which the API refuses: amounts are integers), as the TypeScript and PHP clients
    write it in a query and as JSON reads it in a body."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _segment(value: str) -> str:
    return quote(value, safe="")


def _context_query(
    customer_id: Optional[str],
    device_type: Optional[str],
    country: Optional[str],
    amount: Optional[int],
    currency: Optional[str],
    timezone: Optional[str],
    client_secret: Optional[str],
    merchant_id: Optional[str],
) -> Dict[str, Any]:
    return _drop_none(
        {
            "customer_id": customer_id,
            "merchant_id": merchant_id,
            "client_secret": client_secret,
            "device_type": device_type,
            "country": country,
            "amount": amount,
            "currency": currency,
            "timezone": timezone,
        }
    )
