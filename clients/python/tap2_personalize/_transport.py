"""HTTP with the standard library: one attempt per call, retries of 429 (and of 503 where resending is safe) around it."""

import errno
import http.client
import io
import json
import random
import re
import socket
import threading
import time
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Tuple, cast
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


def http_transport(method: str, url: str, headers: Dict[str, str], body: Optional[bytes], timeout: float) -> RawResponse:
    """One attempt, bounded by ``timeout`` as a whole: DNS lookup, connect, send, headers and body. (urllib's
    timeout bounds each socket read, so headers or a body trickling in could take any time.)
    http.client follows no redirect: the API never redirects, and a followed one would carry
    X-API-Key to whatever host it names, so a 3xx comes back as the answer it is."""
    deadline = time.monotonic() + timeout
    parts = urlsplit(url)
    try:
        connection = _connection(parts.scheme, parts.netloc, deadline)
        response: Optional[http.client.HTTPResponse] = None
        try:
            connection.request(method, (parts.path or "/") + (f"?{parts.query}" if parts.query else ""), body=body, headers=headers)
            response = connection.getresponse()
            # read() raises IncompleteRead when Content-Length promised more than arrived.
            return RawResponse(response.status, _lower(response.headers), response.read())
        finally:
            if response is not None:
                response.close()
            connection.close()
    except (socket.timeout, TimeoutError) as err:
        raise Tap2Error("TIMEOUT", timeout_message(timeout)) from err
    except (OSError, http.client.HTTPException) as err:  # refused, a cut connection, a truncated body
        raise Tap2Error("NETWORK_ERROR", network_error_message(err)) from err


def timeout_message(seconds: float) -> str:
    """``No answer within 10 s`` (seconds, up to 3 decimals): the TypeScript and PHP clients say the same."""
    return f"No answer within {f'{seconds:.3f}'.rstrip('0').rstrip('.')} s"


def network_error_message(err: BaseException) -> str:
    """The message of a NETWORK_ERROR, in the same words as the TypeScript and PHP clients for the
    failures all three can tell apart; else the error's own text (the error is the ``__cause__``)."""
    if isinstance(err, socket.gaierror):
        return "Request failed: could not resolve the host name"
    if isinstance(err, ConnectionRefusedError) or (isinstance(err, OSError) and err.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL)):
        return "Request failed: could not connect to the server"
    if isinstance(err, (http.client.RemoteDisconnected, http.client.IncompleteRead, ConnectionResetError, BrokenPipeError)):
        return "Request failed: the connection closed before the whole answer arrived"
    if isinstance(err, http.client.HTTPException):
        return "Request failed: the answer is not valid HTTP"
    return f"Request failed: {err or type(err).__name__}"


def _connection(scheme: str, netloc: str, deadline: float) -> http.client.HTTPConnection:
    if scheme == "https":
        return _HTTPSConnection(netloc, deadline)
    if scheme == "http":
        return _HTTPConnection(netloc, deadline)
    raise Tap2Error("NETWORK_ERROR", f"Request failed: unsupported URL scheme {scheme!r}")


def _time_left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise socket.timeout("the attempt's deadline passed")
    return left


class _DeadlineSocket:
    """The connection's socket, its timeout lowered before every send and read to what is left of
    the attempt: each read waits at most that long, and all of them together no longer either.

    Like socket.socket, it stays open while a file made by makefile() is: http.client closes the
    connection as soon as it has read the headers of an answer that ends the connection
    (``Connection: close``, HTTP/1.0, a body read until EOF), handing the socket to the response,
    which then reads the body through its file."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline
        self._open_files = 0
        self._closed = False

    def sendall(self, data: bytes) -> None:
        self._sock.settimeout(_time_left(self._deadline))
        self._sock.sendall(data)

    def makefile(self, mode: str) -> io.BufferedReader:  # noqa: ARG002  http.client asks for "rb"
        self._open_files += 1
        return io.BufferedReader(_DeadlineReader(self))

    def close(self) -> None:
        self._closed = True
        if self._open_files == 0:
            self._sock.close()

    def _file_closed(self) -> None:
        self._open_files -= 1
        if self._closed and self._open_files == 0:
            self._sock.close()


class _DeadlineReader(io.RawIOBase):
    """What http.client reads the status line, headers and body from, one recv at a time."""

    def __init__(self, owner: _DeadlineSocket) -> None:
        self._owner = owner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        sock = self._owner._sock
        sock.settimeout(_time_left(self._owner._deadline))
        return sock.recv_into(buffer)

    def close(self) -> None:
        if not self.closed:
            super().close()
            self._owner._file_closed()


def resolve(host: str, port: int, deadline: float) -> List[Tuple[Any, ...]]:
    """getaddrinfo within what is left of the attempt. The standard library's lookup takes no
    timeout (the system resolver's own retries can take 10 s and more), so a name is looked up in a
    daemon thread that is waited for until the deadline; past it the attempt is a timeout and the
    thread is left to finish on its own. An IP address is parsed here, without a thread."""
    try:
        return socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)
    except socket.gaierror:
        pass
    except UnicodeError as err:
        # The socket module's idna codec refuses the name (a label empty or over 63 characters):
        # no resolver could look it up. Node's fetch and curl say "not found" for it.
        raise socket.gaierror(socket.EAI_NONAME, f"not a host name a resolver can look up: {err}") from err
    done = threading.Event()
    outcome: Dict[str, Any] = {}

    def lookup() -> None:
        try:
            outcome["addresses"] = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
        except Exception as err:  # noqa: BLE001  handed to the caller's thread
            outcome["error"] = err
        finally:
            done.set()

    threading.Thread(target=lookup, name="tap2-dns-lookup", daemon=True).start()
    if not done.wait(_time_left(deadline)):
        raise socket.timeout(f"the DNS lookup of {host} did not finish before the attempt's deadline")
    if "error" in outcome:
        raise outcome["error"]
    return cast(List[Tuple[Any, ...]], outcome["addresses"])


def _create_connection(address: Tuple[str, int], deadline: float, source_address: Optional[Tuple[str, int]]) -> socket.socket:
    """socket.create_connection, with the lookup and every address tried sharing the attempt's deadline."""
    host, port = address
    last: Optional[OSError] = None
    for family, kind, proto, _, sockaddr in resolve(host, port, deadline):
        left = _time_left(deadline)  # past the deadline: a timeout, whatever the last address said
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(left)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as err:
            sock.close()
            last = err
    raise last or OSError(f"no address found for {host}")


class _DeadlineConnection:
    """Mixed into http.client's connections: the DNS lookup, each address tried and the TLS
    handshake (one deadline in CPython's ssl) get what is left of the attempt, and the socket it
    opened is handed on as a _DeadlineSocket."""

    timeout: float
    sock: Any

    def __init__(self, netloc: str, deadline: float) -> None:
        super().__init__(netloc, timeout=_time_left(deadline))  # type: ignore[call-arg]
        self._deadline = deadline
        # http.client opens its socket through this attribute (socket.create_connection).
        self._create_connection = lambda address, timeout=None, source_address=None: _create_connection(address, deadline, source_address)

    def connect(self) -> None:
        self.timeout = _time_left(self._deadline)
        super().connect()  # type: ignore[misc]
        self.sock = _DeadlineSocket(self.sock, self._deadline)


class _HTTPConnection(_DeadlineConnection, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_DeadlineConnection, http.client.HTTPSConnection):
    pass


def _lower(headers: Any) -> Dict[str, str]:
    return {k.lower(): v for k, v in headers.items()} if headers is not None else {}


#: The longest Retry-After the clients read, in seconds: a longer one (or one that overflows) is this (RFC 9111 §1.2.2).
MAX_RETRY_AFTER_SECONDS = float(2**31)

_DELTA_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Retry-After in seconds: delta-seconds (digits, optionally a decimal fraction) or an HTTP-date
    (:func:`parse_http_date`); None when absent or anything else (``nan``, ``inf``, ``-1``, ``+5``,
    ``1e3``, ``1_000``), so the caller backs off. A value past :data:`MAX_RETRY_AFTER_SECONDS` is
    capped to it. The TypeScript and PHP clients read it the same way."""
    if value is None:
        return None
    value = value.strip(" \t")
    if _DELTA_SECONDS.fullmatch(value):
        seconds: Optional[float] = float(value)
    else:
        now = time.time() if now is None else now
        when = parse_http_date(value, now)
        seconds = None if when is None else max(0.0, when - now)
    return None if seconds is None else min(seconds, MAX_RETRY_AFTER_SECONDS)


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH = "(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_IMF_FIXDATE = re.compile(r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), ([0-9]{2}) " + _MONTH + r" ([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) GMT")
_RFC850_DATE = re.compile(
    r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), ([0-9]{2})-" + _MONTH + r"-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) GMT"
)
_ASCTIME_DATE = re.compile(r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) " + _MONTH + r" ( [0-9]|[0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) ([0-9]{4})")


def parse_http_date(value: str, now: float) -> Optional[float]:
    """An HTTP-date (RFC 9110 §5.6.7) in seconds since the epoch, or None: IMF-fixdate
    (``Sun, 06 Nov 1994 08:49:37 GMT``) and the obsolete RFC 850 (``Sunday, 06-Nov-94 08:49:37 GMT``)
    and asctime (``Sun Nov  6 08:49:37 1994``, UTC) forms, exactly (case and spaces included), with a
    real calendar date; nothing else (email.utils also takes ``+0200`` zones, no weekday, a 1-digit
    day, and reads asctime as local time). The TypeScript and PHP clients parse the same forms."""
    m = _IMF_FIXDATE.fullmatch(value)
    if m:
        day, month, year, hour, minute, second = m.groups()
    else:
        m = _RFC850_DATE.fullmatch(value)
        if m:
            day, month, year, hour, minute, second = m.groups()
        else:
            m = _ASCTIME_DATE.fullmatch(value)
            if not m:
                return None
            month, day, hour, minute, second, year = m.groups()
    y = int(year)
    if len(year) == 2:
        # RFC 9110: a two-digit year more than 50 years ahead is the latest past year with those digits.
        this_year = time.gmtime(now).tm_year
        y += this_year - this_year % 100
        if y > this_year + 50:
            y -= 100
    d, mo, h, mi, sec = int(day), _MONTHS.index(month) + 1, int(hour), int(minute), int(second)
    if d < 1 or d > _days_in_month(y, mo) or h > 23 or mi > 59 or sec > 60:
        return None
    return float(((_days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60 + sec)


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's days_from_civil)."""
    y = year - 1 if month <= 2 else year
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def retry_delay(retry: int, retry_after: Optional[float], base_delay: float, rand: Callable[[], float] = random.random) -> float:
    """Seconds before retry number ``retry`` (0-based): Retry-After wins, else exponential backoff with jitter."""
    if retry_after is not None:
        return retry_after
    step = base_delay * (2 ** retry)
    return step / 2 + rand() * step / 2


#: The message of a 3xx (code ``REDIRECT``, the answer's status), whatever its body: the TypeScript
#: and PHP clients say the same. A redirect usually means a wrong base URL (``http://`` for ``https://``).
REDIRECT_MESSAGE = "Refused a redirect (the API never redirects: check the base URL)"


def error_from_response(response: RawResponse) -> Tap2Error:
    """The error of a non-2xx answer. A 3xx is ``REDIRECT`` (:data:`REDIRECT_MESSAGE`): it is not
    followed, since a followed one would carry X-API-Key to whatever host it names. An API error body is ``{"error": {"code": "<non-empty string>",
    …}}``; anything else (a proxy's HTML page, an empty body, other JSON) is ``HTTP_<status>`` with the
    message ``HTTP <status> (the answer is not an API error body)``. The TypeScript and PHP clients
    say the same."""
    header_request_id = response.headers.get("x-request-id")
    if 300 <= response.status < 400:
        return Tap2Error(code="REDIRECT", message=REDIRECT_MESSAGE, request_id=header_request_id, status=response.status)
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    error: Any = None
    try:
        parsed = json.loads(response.body.decode("utf-8")) if response.body else None
        if isinstance(parsed, dict):
            error = parsed.get("error")
    except ValueError:
        pass
    if not isinstance(error, dict) or not _non_empty_string(error.get("code")):
        return Tap2Error(
            code=f"HTTP_{response.status}",
            message=f"HTTP {response.status} (the answer is not an API error body)",
            request_id=header_request_id,
            status=response.status,
            retry_after=retry_after,
        )
    details = error.get("details")
    return Tap2Error(
        code=error["code"],
        message=error["message"] if _non_empty_string(error.get("message")) else f"HTTP {response.status}",
        request_id=error["request_id"] if _non_empty_string(error.get("request_id")) else header_request_id,
        status=response.status,
        details=details if isinstance(details, list) else None,
        retry_after=retry_after,
    )


def _non_empty_string(value: Any) -> bool:
    return isinstance(value, str) and value != ""


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
