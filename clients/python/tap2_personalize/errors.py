"""The one error type of the client."""

from typing import Any, Dict, List, Optional, Tuple


class Tap2Error(Exception):
    """Raised by every failed call.

    ``status`` is the HTTP status, or 0 when no answer arrived (``code`` ``TIMEOUT`` or
    ``NETWORK_ERROR``). ``code``, ``message`` and ``request_id`` come from the API's error body
    ``{"error": {"code", "message", "request_id", "details"?}}``; quote ``request_id`` to support.
    A 3xx answer is ``REDIRECT`` with its status (a redirect is never followed).
    """

    def __init__(
        self,
        code: str,
        message: str,
        request_id: Optional[str] = None,
        status: int = 0,
        details: Optional[List[Dict[str, Any]]] = None,
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id
        self.status = status
        self.details = details
        #: The server's Retry-After in seconds (429/503), when it sent one.
        self.retry_after = retry_after

    def __reduce__(self) -> Tuple[Any, ...]:
        # Exception pickles as type(self)(*self.args), i.e. with the message only, which this
        # __init__ refuses: without this, a Tap2Error raised in a Celery task, a multiprocessing or
        # ProcessPoolExecutor worker, or copied with copy.copy() could not be rebuilt.
        return (type(self), (self.code, self.message, self.request_id, self.status, self.details, self.retry_after), self.__dict__)

    def __str__(self) -> str:
        where = f" (request {self.request_id})" if self.request_id else ""
        return f"{self.status} {self.code}: {self.message}{where}"

    def __repr__(self) -> str:
        return (
            f"Tap2Error(code={self.code!r}, message={self.message!r}, "
            f"request_id={self.request_id!r}, status={self.status!r})"
        )
