"""HTTP with the standard library: one attempt per call, retries of 429 (and of 503 where resending is safe) around it."""

import http.client
import json
import random
import socket
import time
import urllib.error
import urllib.request
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Dict, Mapping, NamedTuple, Optional
from urllib.parse import urlsplit

from .errors import Tap2Error

#: Methods whose repeat does what the first did (RFC 9110 §9.2.2), so a 503 may be resent.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})


class RawResponse(NamedTuple):
    status: int
    headers: Mapping[str, str]
    body: bytes


#: (method, url, headers, body, timeout seconds) -> RawResponse; raises Tap2Error for no answer.
Transport = Callable[[str, str, Dict[str, str], Optional[bytes], float], RawResponse]


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """The API never redirects; a followed redirect would carry X-API-Key to whatever host it names.
    The 3xx comes back as an HTTPError, i.e. as the answer it is."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:  # noqa: ARG002
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def urllib_transport(method: str, url: str, headers: Dict[str, str], body: Optional[bytes], timeout: float) -> RawResponse:
    """One attempt, bounded by ``timeout`` as a whole (connect, headers and the whole body: urllib's
    own timeout bounds each socket read, so a body that trickles in could take any time)."""
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        try:
            response = _opener.open(request, timeout=timeout)
        except urllib.error.HTTPError as err:  # a non-2xx answer is still an answer
            response = err
        with response:
            status = response.status if not isinstance(response, urllib.error.HTTPError) else response.code
            return RawResponse(status, _lower(response.headers), _read_body(response, deadline, timeout))
    except (socket.timeout, TimeoutError) as err:
        raise Tap2Error("TIMEOUT", f"No answer within {timeout} s") from err
    except urllib.error.URLError as err:
        if isinstance(err.reason, (socket.timeout, TimeoutError)):
            raise Tap2Error("TIMEOUT", f"No answer within {timeout} s") from err
        raise Tap2Error("NETWORK_ERROR", f"Request failed: {err.reason}") from err
    except (OSError, http.client.HTTPException) as err:  # a cut connection, a truncated body (IncompleteRead)
        raise Tap2Error("NETWORK_ERROR", f"Request failed: {err!r}") from err


def _read_body(response: Any, deadline: float, timeout: float) -> bytes:
    """The body in chunks as they come, the socket's timeout lowered to what is left of the attempt."""
    raw = response if isinstance(response, http.client.HTTPResponse) else getattr(response, "fp", response)  # an HTTPError wraps it
    read = getattr(raw, "read1", None) or raw.read
    sock = getattr(getattr(getattr(raw, "fp", None), "raw", None), "_sock", None)
    chunks = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise Tap2Error("TIMEOUT", f"No answer within {timeout} s")
        if sock is not None:
            sock.settimeout(left)
        chunk = read(65536)
        if not chunk:
            body = b"".join(chunks)
            if getattr(raw, "length", None):  # Content-Length promised more: the connection was cut
                raise http.client.IncompleteRead(body, raw.length)
            return body
        chunks.append(chunk)


def _lower(headers: Any) -> Dict[str, str]:
    return {k.lower(): v for k, v in headers.items()} if headers is not None else {}


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Retry-After as delta-seconds or an HTTP date, in seconds; None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def retry_delay(retry: int, retry_after: Optional[float], base_delay: float, rand: Callable[[], float] = random.random) -> float:
    """Seconds before retry number ``retry`` (0-based): Retry-After wins, else exponential backoff with jitter."""
    if retry_after is not None:
        return retry_after
    step = base_delay * (2 ** retry)
    return step / 2 + rand() * step / 2


def error_from_response(response: RawResponse) -> Tap2Error:
    error: Dict[str, Any] = {}
    try:
        parsed = json.loads(response.body.decode("utf-8")) if response.body else None
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
            error = parsed["error"]
    except ValueError:
        pass
    return Tap2Error(
        code=str(error.get("code") or f"HTTP_{response.status}"),
        message=str(error.get("message") or f"HTTP {response.status}"),
        request_id=error.get("request_id") or response.headers.get("x-request-id"),
        status=response.status,
        details=error.get("details"),
        retry_after=parse_retry_after(response.headers.get("retry-after")),
    )


def may_retry(status: int, method: str, url: str, headers: Mapping[str, str], body: Optional[bytes]) -> bool:
    """Whether this answer may be met by sending the request again. A 429 always: the rate limiter
    refused it before anything ran. A 503 may come from a step after the write committed (a second
    restore then answers 404), so only a request the API treats as idempotent is resent: an
    idempotent method, an Idempotency-Key, or single feedback with its event_id (stored once per
    (merchant, event_id)). Anything else, e.g. restore_customer, returns its 503 to the caller."""
    if status == 429:
        return True
    if status != 503:
        return False
    if method in IDEMPOTENT_METHODS or any(name.lower() == "idempotency-key" for name in headers):
        return True
    return method == "POST" and urlsplit(url).path.endswith("/v1/personalize/feedback") and _has_event_id(body)


def _has_event_id(body: Optional[bytes]) -> bool:
    try:
        event = json.loads(body or b"")
    except ValueError:
        return False
    return isinstance(event, dict) and isinstance(event.get("event_id"), str)


class RetryPolicy(NamedTuple):
    max_retries: int
    timeout: float
    base_delay: float
    max_delay: float


def send_with_retries(
    transport: Transport,
    sleep: Callable[[float], None],
    policy: RetryPolicy,
    method: str,
    url: str,
    headers: Dict[str, str],
    body: Optional[bytes],
) -> RawResponse:
    """Sends the same request (body and idempotency key included) until its answer is not to be
    retried (:func:`may_retry`), or retries run out."""
    retry = 0
    while True:
        response = transport(method, url, headers, body, policy.timeout)
        if retry >= policy.max_retries or not may_retry(response.status, method, url, headers, body):
            return response
        delay = retry_delay(retry, parse_retry_after(response.headers.get("retry-after")), policy.base_delay)
        if delay > policy.max_delay:
            return response
        sleep(delay)
        retry += 1
