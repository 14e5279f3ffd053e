"""What the client makes of answers (a scripted transport, no server): a success of the wrong shape is
INVALID_RESPONSE, never a TypeError/KeyError/AttributeError in the caller's code (docs/clients.md)."""

import unittest
from typing import Any, Callable, Dict, List, Optional, Tuple

from tap2_personalize import Client, Tap2Error
from tap2_personalize._transport import RawResponse


def answering(status: int, body: bytes, sent: Optional[List[Tuple[str, str, Dict[str, str], Optional[bytes]]]] = None) -> Client:
    def transport(method: str, url: str, headers: Dict[str, str], data: Optional[bytes], timeout: float) -> RawResponse:
        if sent is not None:
            sent.append((method, url, dict(headers), data))
        return RawResponse(status, {"x-request-id": "req_shape", "content-type": "application/json"}, body)

    return Client("tp2_sk_test", "http://tap2.test", transport=transport, max_retries=0)


#: Every call whose answer is JSON, and the problem named when the field it promises is missing.
CALLS: List[Tuple[str, Callable[[Client], Any], Optional[str]]] = [
    ("get_methods", lambda c: c.get_methods("cus_1"), '"methods" is not an array'),
    ("get_offers", lambda c: c.get_offers("cus_1"), '"offers" is not an array'),
    ("send_feedback_batch", lambda c: c.send_feedback_batch([{"customer_id": "cus_1", "method_id": "visa"}]), '"accepted" is not a number'),
    ("get_preferences", lambda c: c.get_preferences("cus_1"), None),
    ("put_preferences", lambda c: c.put_preferences("cus_1", favorite_methods=[]), '"preferences" is not an object'),
    ("get_consent", lambda c: c.get_consent("cus_1"), '"entries" is not an array'),
    ("create_checkout_session", lambda c: c.create_checkout_session("cus_1"), '"client_secret" is not a string'),
    ("delete_customer", lambda c: c.delete_customer("cus_1"), None),
    ("restore_customer", lambda c: c.restore_customer("cus_1"), None),
    ("export_customer", lambda c: c.export_customer("cus_1"), None),
    ("get_analytics_summary", lambda c: c.get_analytics_summary(), None),
    ("get_analytics_timeseries", lambda c: c.get_analytics_timeseries("conversion_rate"), '"points" is not an array'),
    ("get_payment_methods", lambda c: c.get_payment_methods(), '"methods" is not an array'),
]

WRONG_FIELDS = b'{"methods":{},"offers":"x","accepted":"3","preferences":[],"entries":null,"client_secret":1,"points":{}}'


class AnswerShapeTest(unittest.TestCase):
    def test_a_success_that_is_not_a_json_object_is_invalid_response(self) -> None:
        for name, call, _ in CALLS:
            for body in (b"[]", b'"x"', b"null", b"7", b"true", b""):
                with self.subTest(call=name, body=body):
                    with self.assertRaises(Tap2Error) as caught:
                        call(answering(200, body))
                    err = caught.exception
                    self.assertEqual((err.status, err.code, err.request_id, err.message), (200, "INVALID_RESPONSE", "req_shape", "Unexpected answer: not a JSON object"))

    def test_an_object_without_the_promised_field_is_invalid_response_naming_it(self) -> None:
        for name, call, missing in CALLS:
            for body in (b"{}", WRONG_FIELDS):
                with self.subTest(call=name, body=body):
                    if missing is None:
                        self.assertIsInstance(call(answering(200, body)), dict)
                        continue
                    with self.assertRaises(Tap2Error) as caught:
                        call(answering(200, body))
                    self.assertEqual((caught.exception.code, caught.exception.message), ("INVALID_RESPONSE", f"Unexpected answer: {missing}"))

    def test_answers_of_the_promised_shape_pass_through(self) -> None:
        self.assertEqual(answering(200, b'{"methods":[{"method_id":"visa"}],"extra":1}').get_payment_methods(), [{"method_id": "visa"}])
        self.assertEqual(answering(202, b'{"accepted":2}').send_feedback_batch([], idempotency_key="k"), {"accepted": 2, "idempotency_key": "k"})
        self.assertEqual(answering(200, b'{"accepted":true}'.replace(b"true", b"2.0")).send_feedback_batch([], idempotency_key="k")["accepted"], 2)

    def test_a_boolean_is_not_a_number(self) -> None:
        # bool is an int subclass in Python; JSON true is not a count.
        with self.assertRaises(Tap2Error) as caught:
            answering(202, b'{"accepted":true}').send_feedback_batch([], idempotency_key="k")
        self.assertEqual(caught.exception.message, 'Unexpected answer: "accepted" is not a number')

    def test_send_feedback_promises_nothing_but_the_2xx(self) -> None:
        event = {"customer_id": "c", "method_id": "visa", "event_id": "e1"}
        self.assertEqual(answering(204, b"").send_feedback(event), {"event_id": "e1"})  # type: ignore[arg-type]
        self.assertEqual(answering(200, b"[]").send_feedback(event), {"event_id": "e1"})  # type: ignore[arg-type]


if __name__ == "__main__":
    unittest.main()


def not_an_api_error(status: int) -> str:
    return f"HTTP {status} (the answer is not an API error body)"


#: Error answers and what the three clients make of them (the TypeScript and PHP tests hold the same table):
#: (what, status, body, code, message, request_id, details).
ERROR_ANSWERS: List[Tuple[str, int, bytes, str, str, str, Any]] = [
    ("a proxy's HTML page", 502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "HTTP_502", not_an_api_error(502), "req_hdr", None),
    ("an empty body", 504, b"", "HTTP_504", not_an_api_error(504), "req_hdr", None),
    ("JSON that is not an error body", 500, b'[{"error":1}]', "HTTP_500", not_an_api_error(500), "req_hdr", None),
    ("an error that is a string", 500, b'{"error":"boom"}', "HTTP_500", not_an_api_error(500), "req_hdr", None),
    ("an error without a code", 500, b'{"error":{"message":"m"}}', "HTTP_500", not_an_api_error(500), "req_hdr", None),
    ("an error whose code is a number", 500, b'{"error":{"code":5,"message":"m"}}', "HTTP_500", not_an_api_error(500), "req_hdr", None),
    ("an error without a message", 503, b'{"error":{"code":"UNAVAILABLE"}}', "UNAVAILABLE", "HTTP 503", "req_hdr", None),
    ("an error with odd request_id and details", 400, b'{"error":{"code":"VALIDATION_ERROR","message":"bad","request_id":7,"details":"x"}}', "VALIDATION_ERROR", "bad", "req_hdr", None),
    (
        "a whole API error",
        400,
        b'{"error":{"code":"VALIDATION_ERROR","message":"bad","request_id":"req_body","details":[{"path":"a","message":"b"}]}}',
        "VALIDATION_ERROR",
        "bad",
        "req_body",
        [{"path": "a", "message": "b"}],
    ),
]


class ErrorAnswerTest(unittest.TestCase):
    def test_error_answers_give_the_same_code_message_and_request_id_as_the_other_clients(self) -> None:
        for what, status, body, code, message, request_id, details in ERROR_ANSWERS:
            with self.subTest(what):

                def transport(method: str, url: str, headers: Dict[str, str], data: Optional[bytes], timeout: float) -> RawResponse:
                    return RawResponse(status, {"x-request-id": "req_hdr", "content-type": "text/html"}, body)

                with self.assertRaises(Tap2Error) as caught:
                    Client("tp2_sk_test", "http://tap2.test", transport=transport, max_retries=0).get_consent("cus_1")
                err = caught.exception
                self.assertEqual((err.status, err.code, err.message, err.request_id, err.details), (status, code, message, request_id, details))
