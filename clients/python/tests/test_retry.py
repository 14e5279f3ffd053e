"""Retry, idempotency and error mapping against a scripted transport (no server needed)."""

import json
import unittest
from typing import Dict, List, Optional, Tuple

from tap2_personalize import Client, Tap2Error
from tap2_personalize._transport import RawResponse, may_retry, parse_retry_after, retry_delay


def error_body(code: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": code.lower(), "request_id": "req_test", "documentation_url": "x"}}).encode()


class Scripted:
    """Answers in order and records what was sent."""

    def __init__(self, answers: List[object]) -> None:
        self.answers = list(answers)
        self.sent: List[Tuple[str, str, Dict[str, str], Optional[bytes], float]] = []

    def __call__(self, method: str, url: str, headers: Dict[str, str], body: Optional[bytes], timeout: float) -> RawResponse:
        self.sent.append((method, url, dict(headers), body, timeout))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, RawResponse)
        return answer


def client(transport: Scripted, sleeps: List[float], **kwargs: object) -> Client:
    return Client("tp2_sk_test", "http://tap2.test/", transport=transport, sleep=sleeps.append, **kwargs)  # type: ignore[arg-type]


class RetryTest(unittest.TestCase):
    def test_429_waits_retry_after_and_resends_the_same_event_id(self) -> None:
        server = Scripted([RawResponse(429, {"retry-after": "2"}, error_body("RATE_LIMITED")), RawResponse(204, {}, b"")])
        sleeps: List[float] = []
        sent = client(server, sleeps).send_feedback({"customer_id": "cus_1", "method_id": "visa"})
        self.assertEqual(sleeps, [2.0])
        self.assertEqual(len(server.sent), 2)
        self.assertEqual(server.sent[0][3], server.sent[1][3])
        body = json.loads(server.sent[0][3] or b"{}")
        self.assertEqual(body["event_id"], sent["event_id"])
        self.assertRegex(sent["event_id"], r"^evt_[0-9a-f]{32}$")
        self.assertEqual(server.sent[0][2]["X-API-Key"], "tp2_sk_test")
        self.assertEqual(server.sent[0][1], "http://tap2.test/v1/personalize/feedback")

    def test_caller_event_id_is_kept(self) -> None:
        server = Scripted([RawResponse(204, {}, b"")])
        sent = client(server, []).send_feedback({"customer_id": "c", "method_id": "visa", "event_id": "order_42"})
        self.assertEqual(sent["event_id"], "order_42")
        self.assertEqual(json.loads(server.sent[0][3] or b"{}")["event_id"], "order_42")

    def test_none_means_not_given_in_every_body_and_query(self) -> None:
        # The API refuses JSON null for every optional field but default_method (400 VALIDATION_ERROR).
        unset = {"merchant_id": None, "amount": None, "currency": None, "device_type": None, "location_country": None, "decision_id": None, "offer_id": None, "occurred_at": None}
        server = Scripted([RawResponse(204, {}, b""), RawResponse(202, {}, b'{"accepted":1}')])
        sent = client(server, []).send_feedback({"customer_id": "c", "method_id": "visa", "event_id": None, **unset})  # type: ignore[typeddict-item]
        body = json.loads(server.sent[0][3] or b"{}")
        self.assertEqual(body, {"customer_id": "c", "method_id": "visa", "event_id": sent["event_id"]})
        self.assertRegex(sent["event_id"], r"^evt_[0-9a-f]{32}$")
        client(server, []).send_feedback_batch([{"customer_id": "c", "method_id": "visa", "event_id": None, **unset}], idempotency_key=None)  # type: ignore[typeddict-item]
        self.assertEqual(json.loads(server.sent[1][3] or b"{}"), {"events": [{"customer_id": "c", "method_id": "visa"}]})
        self.assertRegex(server.sent[1][2]["Idempotency-Key"], r"^batch_[0-9a-f]{32}$")

        answers = [
            RawResponse(200, {}, b'{"methods":[]}'),
            RawResponse(200, {}, b'{"offers":[]}'),
            RawResponse(200, {}, b'{"updated":true,"preferences":{}}'),
            RawResponse(200, {}, b'{"updated":true,"preferences":{}}'),
            RawResponse(201, {}, b'{"client_secret":"s"}'),
            RawResponse(200, {}, b'{"points":[]}'),
            RawResponse(200, {}, b"{}"),
        ]
        server = Scripted(answers)
        c = client(server, [])
        c.get_methods("c", device_type=None, country=None, amount=None, currency=None, timezone=None, client_secret=None, merchant_id=None)
        c.get_offers("c", device_type=None, country=None, amount=None, currency=None, timezone=None, client_secret=None, merchant_id=None)
        c.put_preferences("c", favorite_methods=None, excluded_methods=None, personalization_enabled=None, cross_merchant_consent=None, merchant_id=None)
        c.put_preferences("c", default_method=None)  # documented: None clears default_method
        c.create_checkout_session("c", amount=None, currency=None, country=None, device_type=None, expires_in=None, merchant_id=None, idempotency_key=None)
        c.get_analytics_timeseries("m", granularity=None, from_=None, to=None, currency=None, merchant_id=None)
        c.get_analytics_summary(from_=None, to=None, merchant_id=None)
        urls = [s[1] for s in server.sent]
        self.assertEqual(urls[0], "http://tap2.test/v1/personalize/methods?customer_id=c")
        self.assertEqual(urls[1], "http://tap2.test/v1/personalize/offers?customer_id=c")
        self.assertEqual([json.loads(s[3] or b"{}") for s in server.sent[2:5]], [{"customer_id": "c"}, {"customer_id": "c", "default_method": None}, {"customer_id": "c"}])
        self.assertEqual(urls[5:], ["http://tap2.test/v1/analytics/timeseries?metric=m", "http://tap2.test/v1/analytics/summary"])

    def test_an_empty_idempotency_key_is_sent_as_given_not_replaced(self) -> None:
        # Only None means "not given". An empty key (an order id that came out empty) is the caller's
        # bug: the API answers 400, as to the TypeScript and PHP clients; a generated key instead
        # would silently break the caller's own deduplication across resends.
        server = Scripted([RawResponse(400, {}, error_body("VALIDATION_ERROR")), RawResponse(400, {}, error_body("VALIDATION_ERROR"))])
        with self.assertRaises(Tap2Error):
            client(server, []).send_feedback_batch([{"customer_id": "c", "method_id": "visa"}], idempotency_key="")
        with self.assertRaises(Tap2Error):
            client(server, []).create_checkout_session("c", idempotency_key="")
        self.assertEqual([s[2]["Idempotency-Key"] for s in server.sent], ["", ""])

    def test_503_backs_off_then_raises_the_last_error_with_one_idempotency_key(self) -> None:
        server = Scripted([RawResponse(503, {}, error_body("UNAVAILABLE")) for _ in range(3)])
        sleeps: List[float] = []
        with self.assertRaises(Tap2Error) as caught:
            client(server, sleeps, max_retries=2, retry_base_delay=0.1).send_feedback_batch([{"customer_id": "c", "method_id": "visa"}])
        self.assertEqual((caught.exception.status, caught.exception.code, caught.exception.request_id), (503, "UNAVAILABLE", "req_test"))
        self.assertEqual(len(server.sent), 3)
        keys = {s[2]["Idempotency-Key"] for s in server.sent}
        self.assertEqual(len(keys), 1)
        self.assertRegex(keys.pop(), r"^batch_[0-9a-f]{32}$")
        self.assertEqual(len(sleeps), 2)
        self.assertTrue(0.05 <= sleeps[0] <= 0.1, sleeps)
        self.assertTrue(0.1 <= sleeps[1] <= 0.2, sleeps)

    def test_a_post_without_idempotency_key_is_sent_once_after_a_503_but_resent_after_a_429(self) -> None:
        # The restore may have committed before the 503: a resend would answer 404.
        unavailable = Scripted([RawResponse(503, {"retry-after": "1"}, error_body("UNAVAILABLE")), RawResponse(404, {}, error_body("NOT_FOUND"))])
        with self.assertRaises(Tap2Error) as caught:
            client(unavailable, []).restore_customer("cus_1")
        self.assertEqual((caught.exception.status, caught.exception.code, len(unavailable.sent)), (503, "UNAVAILABLE", 1))
        # Feedback without an event_id (a custom caller) would get a new id from the server on each try.
        self.assertFalse(may_retry(503, "POST", "http://tap2.test/v1/personalize/feedback", {}, b'{"customer_id":"c","method_id":"visa"}'))

        restored = RawResponse(200, {}, json.dumps({"customer_id": "cus_1", "status": "active"}).encode())
        limited = Scripted([RawResponse(429, {"retry-after": "1"}, error_body("RATE_LIMITED")), restored])
        self.assertEqual(client(limited, []).restore_customer("cus_1"), {"customer_id": "cus_1", "status": "active"})
        self.assertEqual(len(limited.sent), 2)

    def test_a_503_is_retried_where_resending_is_safe(self) -> None:
        def again(answer: RawResponse) -> Scripted:
            return Scripted([RawResponse(503, {"retry-after": "0"}, error_body("UNAVAILABLE")), answer])

        feedback = again(RawResponse(204, {}, b""))
        client(feedback, []).send_feedback({"customer_id": "cus_1", "method_id": "visa"})
        ids = [json.loads(s[3] or b"{}")["event_id"] for s in feedback.sent]
        self.assertEqual((len(ids), ids[0]), (2, ids[1]))

        session = again(RawResponse(201, {}, b'{"id":"cs_1","client_secret":"cs_1_secret"}'))
        client(session, []).create_checkout_session("cus_1", idempotency_key="order_7")
        self.assertEqual([s[2]["Idempotency-Key"] for s in session.sent], ["order_7", "order_7"])

        read = again(RawResponse(200, {}, b'{"customer_id":"cus_1","entries":[],"truncated":false}'))
        client(read, []).get_consent("cus_1")
        erase = again(RawResponse(202, {}, b'{"customer_id":"cus_1","status":"pending_deletion"}'))
        client(erase, []).delete_customer("cus_1")
        self.assertEqual((len(read.sent), len(erase.sent)), (2, 2))

    def test_other_errors_are_not_retried_and_long_retry_after_is_not_waited(self) -> None:
        bad = Scripted([RawResponse(400, {}, error_body("VALIDATION_ERROR"))])
        with self.assertRaises(Tap2Error) as caught:
            client(bad, []).get_preferences("cus_1")
        self.assertEqual(caught.exception.code, "VALIDATION_ERROR")
        self.assertEqual(len(bad.sent), 1)

        sleeps: List[float] = []
        slow = Scripted([RawResponse(429, {"retry-after": "3600"}, error_body("RATE_LIMITED"))])
        with self.assertRaises(Tap2Error) as caught:
            client(slow, sleeps, max_retry_delay=5).get_preferences("cus_1")
        self.assertEqual((caught.exception.status, caught.exception.retry_after), (429, 3600.0))
        self.assertEqual(sleeps, [])

    def test_transport_failures_and_non_json_errors_are_tap2_errors(self) -> None:
        down = Scripted([Tap2Error("TIMEOUT", "No answer within 0.05 s")])
        with self.assertRaises(Tap2Error) as caught:
            client(down, [], timeout=0.05).get_consent("cus_1")
        self.assertEqual((caught.exception.status, caught.exception.code), (0, "TIMEOUT"))
        self.assertEqual(down.sent[0][4], 0.05)

        html = Scripted([RawResponse(502, {"x-request-id": "req_gw"}, b"<html>bad gateway</html>")])
        with self.assertRaises(Tap2Error) as caught:
            client(html, []).get_consent("cus_1")
        self.assertEqual((caught.exception.code, caught.exception.request_id, caught.exception.status), ("HTTP_502", "req_gw", 502))

    def test_real_timeout_and_refused_connection(self) -> None:
        import socket
        import threading

        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        accepted: List[socket.socket] = []
        thread = threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True)
        thread.start()
        try:
            with self.assertRaises(Tap2Error) as caught:
                Client("tp2_sk_test", f"http://127.0.0.1:{port}", timeout=0.3, max_retries=0).get_consent("c")
            self.assertEqual(caught.exception.code, "TIMEOUT")
        finally:
            for conn in accepted:
                conn.close()
            listener.close()
        with self.assertRaises(Tap2Error) as caught:
            Client("tp2_sk_test", f"http://127.0.0.1:{port}", timeout=2, max_retries=0).get_consent("c")
        self.assertEqual((caught.exception.status, caught.exception.code), (0, "NETWORK_ERROR"))

    def test_a_header_value_with_a_line_break_is_refused_before_anything_is_sent(self) -> None:
        server = Scripted([])
        for key in ("k\r\nX-Evil: 1", "k\n", "k\x00"):
            with self.assertRaises(ValueError):
                client(server, []).send_feedback_batch([{"customer_id": "cus_1", "method_id": "visa"}], idempotency_key=key)
        self.assertEqual(server.sent, [])

    def test_a_header_value_with_a_control_character_or_outside_ascii_is_refused_before_anything_is_sent(self) -> None:
        # The same table is in the TypeScript (retry.test.ts) and PHP (retry_test.php) tests.
        refused = ["ключ", "café", "€1", "a\u00a0b", "a\u0001b", "a\u001bb", "a\u007fb"]
        sent = ["order #1001 /x?%&=", "a\tb", "~!@$^*()[]{}|\\\"'`<>,;:+"]
        server = Scripted([RawResponse(202, {}, b'{"accepted":1}'), RawResponse(201, {}, b'{"client_secret":"cs_x_secret_y"}')] * len(sent))
        message = "The {} header cannot hold a control character or a character outside ASCII"
        for key in refused:
            with self.subTest(key=key):
                with self.assertRaises(ValueError) as batch:
                    client(server, []).send_feedback_batch([{"customer_id": "cus_1", "method_id": "visa"}], idempotency_key=key)
                with self.assertRaises(ValueError) as session:
                    client(server, []).create_checkout_session("cus_1", idempotency_key=key)
                with self.assertRaises(ValueError) as api_key:
                    Client(f"tp2_sk_{key}", "http://tap2.test/", transport=server).get_consent("cus_1")
                for err, name in ((batch, "Idempotency-Key"), (session, "Idempotency-Key"), (api_key, "X-API-Key")):
                    self.assertIs(type(err.exception), ValueError)  # not UnicodeEncodeError
                    self.assertEqual(str(err.exception), message.format(name))
        self.assertEqual(server.sent, [])
        for key in sent:
            client(server, []).send_feedback_batch([{"customer_id": "cus_1", "method_id": "visa"}], idempotency_key=key)
            client(server, []).create_checkout_session("cus_1", idempotency_key=key)
        self.assertEqual([s[2]["Idempotency-Key"] for s in server.sent], [key for key in sent for _ in range(2)])

    def test_the_error_survives_pickle_and_copy_with_every_field(self) -> None:
        # Celery, RQ, multiprocessing and concurrent.futures pickle what a worker raised.
        import copy
        import pickle

        err = Tap2Error("VALIDATION_ERROR", "bad", "req_1", 400, [{"path": "customer_id", "message": "bad"}], 2.5)
        for again in (pickle.loads(pickle.dumps(err)), copy.copy(err), copy.deepcopy(err)):
            self.assertIsInstance(again, Tap2Error)
            self.assertEqual(
                (again.code, again.message, again.request_id, again.status, again.details, again.retry_after, str(again)),
                (err.code, err.message, err.request_id, err.status, err.details, err.retry_after, str(err)),
            )

    def test_the_key_is_in_no_view_of_the_clients_attributes_and_a_copy_still_sends_it(self) -> None:
        # vars()/__dict__ is what pprint(vars(client)), debug pages and object-dumping loggers print.
        import copy
        import pickle
        import pprint

        server = Scripted([RawResponse(200, {}, b"{}") for _ in range(3)])
        c = Client("tp2_sk_DoNotLogThisKey", "http://tap2.test", transport=server, max_retries=0)
        for what, text in (("repr", repr(c)), ("vars", str(vars(c))), ("pprint(__dict__)", pprint.pformat(c.__dict__)), ("str", str(c))):
            self.assertNotIn("DoNotLogThisKey", text, what)
        self.assertIn("tp2_sk_…", str(vars(c)))
        c.get_preferences("c")
        copy.copy(c).get_preferences("c")
        again = pickle.loads(pickle.dumps(Client("tp2_sk_DoNotLogThisKey", "http://tap2.test")))  # multiprocessing hands clients on
        again._transport = server
        again.get_preferences("c")
        self.assertEqual([s[2]["X-API-Key"] for s in server.sent], ["tp2_sk_DoNotLogThisKey"] * 3)

    def test_retry_after_and_delay_math(self) -> None:
        self.assertEqual(parse_retry_after("3"), 3.0)
        self.assertIsNone(parse_retry_after(None))
        self.assertIsNone(parse_retry_after("soon"))
        self.assertAlmostEqual(parse_retry_after("Thu, 01 Jan 2026 00:00:10 GMT", now=1767225600.0) or 0, 10.0)
        self.assertEqual(retry_delay(0, None, 0.2, rand=lambda: 0.0), 0.1)
        self.assertEqual(retry_delay(3, None, 0.2, rand=lambda: 1.0), 1.6)
        self.assertEqual(retry_delay(5, 1.5, 0.2), 1.5)

    # The same vectors are in the TypeScript (retry.test.ts) and PHP (retry_test.php) tests.
    NOW = 1767225600.0  # Thu, 01 Jan 2026 00:00:00 GMT

    def test_retry_after_reads_only_the_http_date_forms_of_rfc_9110(self) -> None:
        valid = [
            ("Thu, 01 Jan 2026 00:00:10 GMT", 10.0),
            ("  Thu, 01 Jan 2026 00:00:10 GMT\t", 10.0),
            ("Thursday, 01-Jan-26 00:00:10 GMT", 10.0),
            ("Friday, 01-Jan-27 00:00:00 GMT", 365 * 86400.0),
            ("Friday, 01-Jan-99 00:00:00 GMT", 0.0),  # 1999, not 2099 (more than 50 years ahead)
            ("Thu Jan  1 00:00:10 2026", 10.0),  # UTC, whatever the local time zone
            ("Thu Jan 01 00:00:10 2026", 10.0),
            ("Sun, 06 Nov 1994 08:49:37 GMT", 0.0),
            ("Sat, 29 Feb 2028 00:00:00 GMT", (365 + 365 + 31 + 28) * 86400.0),
        ]
        for value, seconds in valid:
            self.assertEqual((value, parse_retry_after(value, now=self.NOW)), (value, seconds))
        invalid = [
            "tomorrow", "+1 week", "next monday", "now", "Jan 1 2030", "2026-01-01T00:00:10Z", "thu, 01 Jan 2026 00:00:10 GMT",
            "Thu, 01 Jan 2026 00:00:10 +0000", "Thu, 01 Jan 2026 00:00:10 UTC", "Thu, 01 Jan 2026 00:00:10", "Thu, 1 Jan 2026 00:00:10 GMT",
            "Thu,  01 Jan 2026 00:00:10 GMT", "Thu, 31 Feb 2026 00:00:10 GMT", "Thu, 29 Feb 2026 00:00:10 GMT", "Thu, 01 Jan 2026 24:00:00 GMT",
            "Thu, 01 Jan 26 00:00:10 GMT", "Thursday, 01-Jan-2026 00:00:10 GMT", "Thu Jan 1 00:00:10 2026", "Thu Jan  1 00:00:10 2026 GMT",
            "Thu, 01 Jan 2026 00:00:10 GMT\n",
        ]  # fmt: skip
        for value in invalid:
            self.assertEqual((value, parse_retry_after(value, now=self.NOW)), (value, None))

    def test_retry_after_delta_seconds_are_digits_only_and_a_huge_one_is_capped_at_2_31(self) -> None:
        valid = [
            ("0", 0.0), ("3", 3.0), ("  3\t", 3.0), ("1.5", 1.5), ("007", 7.0), ("2147483648", 2.0**31), ("2147483649", 2.0**31),
            ("9" * 400, 2.0**31), ("Fri, 31 Dec 9999 23:59:59 GMT", 2.0**31),
        ]  # fmt: skip
        for value, seconds in valid:
            self.assertEqual((value, parse_retry_after(value, now=self.NOW)), (value, seconds))
        invalid = ["", " ", "nan", "NaN", "inf", "Infinity", "-Infinity", "-1", "-0", "+5", "1e400", "1e3", "1E3", "0x10", "1.", ".5", "1,5", "5 s", "5s", "1_000", "\u0663"]
        for value in invalid:
            self.assertEqual((value, parse_retry_after(value, now=self.NOW)), (value, None))

    def test_an_unreadable_retry_after_is_absent_and_a_huge_one_is_raised_at_once_capped(self) -> None:
        for value in ["nan", "inf", "-1", "1e400"]:
            server = Scripted([RawResponse(429, {"retry-after": value}, error_body("RATE_LIMITED")), RawResponse(200, {}, b'{"customer_id":"c","entries":[]}')])
            sleeps: List[float] = []
            Client("tp2_sk_test", "http://tap2.test", transport=server, sleep=sleeps.append, retry_base_delay=0.1).get_consent("c")
            self.assertEqual((value, len(sleeps), 0.05 <= sleeps[0] <= 0.1), (value, 1, True))
        huge = Scripted([RawResponse(429, {"retry-after": "9" * 400}, error_body("RATE_LIMITED"))])
        sleeps = []
        with self.assertRaises(Tap2Error) as caught:
            Client("tp2_sk_test", "http://tap2.test", transport=huge, sleep=sleeps.append).get_consent("c")
        self.assertEqual((caught.exception.status, caught.exception.retry_after, sleeps, len(huge.sent)), (429, 2.0**31, [], 1))

    def test_a_retry_after_that_is_not_an_http_date_is_absent_and_the_client_backs_off(self) -> None:
        server = Scripted([RawResponse(429, {"retry-after": "tomorrow"}, error_body("RATE_LIMITED")), RawResponse(200, {}, b'{"customer_id":"c","entries":[]}')])
        sleeps: List[float] = []
        Client("tp2_sk_test", "http://tap2.test", transport=server, sleep=sleeps.append, retry_base_delay=0.1).get_consent("c")
        self.assertEqual(len(sleeps), 1)
        self.assertTrue(0.05 <= sleeps[0] <= 0.1, sleeps)


if __name__ == "__main__":
    unittest.main()
