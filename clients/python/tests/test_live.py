"""Against the real worker started by `npm run test:clients` (scripts/clients/test.mjs)."""

import os
import time
import unittest
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, List, TypeVar

from tap2_personalize import Client, Tap2Error

T = TypeVar("T")
RUN = format(int(time.time() * 1000), "x")


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: run these tests with `npm run test:clients`")
    return value


def customer(name: str) -> str:
    return f"py_{name}_{RUN}"


def eventually(read: Callable[[], T], ok: Callable[[T], bool], timeout: float = 15.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if ok(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.3)


class LiveTest(unittest.TestCase):
    sk: Client

    @classmethod
    def setUpClass(cls) -> None:
        cls.base_url = env("TAP2_BASE_URL")
        cls.sk = Client(env("TAP2_SECRET_KEY"), cls.base_url, timeout=15)

    def test_preferences_roundtrip_and_consent(self) -> None:
        cid = customer("prefs")
        defaults = self.sk.get_preferences(cid)
        self.assertEqual((defaults["customer_id"], defaults["personalization_enabled"], defaults["default_method"]), (cid, True, None))

        put = self.sk.put_preferences(cid, default_method="paypal", favorite_methods=["paypal", "visa"], personalization_enabled=False)
        self.assertTrue(put["updated"])
        read = self.sk.get_preferences(cid)
        self.assertEqual(read["default_method"], "paypal")
        self.assertEqual(read["favorite_methods"], ["paypal", "visa"])
        self.assertFalse(read["personalization_enabled"])

        self.sk.put_preferences(cid, default_method=None)
        self.assertIsNone(self.sk.get_preferences(cid)["default_method"])

        entries = self.sk.get_consent(cid)["entries"]
        self.assertIn(("personalization", "revoked", env("TAP2_MERCHANT_ID")), [(e["consent_type"], e["action"], e["merchant_id"]) for e in entries])

    def test_methods_never_return_excluded(self) -> None:
        cid = customer("methods")
        self.sk.put_preferences(cid, excluded_methods=["klarna"])
        res = self.sk.get_methods(cid, device_type="mobile", country="US", amount=4999, currency="USD")
        ids = [m["method_id"] for m in res["methods"]]
        self.assertTrue(ids)
        self.assertNotIn("klarna", ids)
        self.assertTrue(set(ids) <= set(env("TAP2_METHODS").split(",")))
        self.assertTrue(res["decision_id"])
        self.assertLessEqual(sum(m["confidence"] for m in res["methods"]), 1.000001)
        self.assertEqual(res.get("fallback_reason"), "no_history")

    def test_offers(self) -> None:
        res = self.sk.get_offers(customer("offers"), device_type="mobile", country="US", amount=5000, currency="USD")
        # Both configured offers fit a mobile USD basket in the US; nothing else is configured.
        self.assertEqual(sorted(o["offer_id"] for o in res["offers"]), ["applepay_5off", "paypal_2off"])

    def test_feedback_is_stored_once_per_event_id_and_batch_is_accepted(self) -> None:
        cid = customer("feedback")
        first = self.sk.send_feedback({"customer_id": cid, "method_id": "visa", "amount": 1200, "currency": "USD"})
        self.assertTrue(first["event_id"].startswith("evt_"))
        self.sk.send_feedback({"customer_id": cid, "method_id": "visa", "amount": 1200, "currency": "USD", "event_id": first["event_id"]})
        batch = self.sk.send_feedback_batch([{"customer_id": cid, "method_id": "paypal"}, {"customer_id": cid, "method_id": "apple_pay", "event_id": f"{cid}_b2"}])
        self.assertEqual(batch["accepted"], 2)
        self.assertTrue(batch["idempotency_key"].startswith("batch_"))

        exported = eventually(lambda: self.sk.export_customer(cid), lambda e: len(e["usage_events"]) >= 3)
        ids: List[Any] = [e["event_id"] for e in exported["usage_events"]]
        self.assertEqual(ids.count(first["event_id"]), 1)
        self.assertIn(f"{cid}_b2", ids)
        self.assertEqual(len(ids), 3)

    def test_none_for_an_optional_field_is_not_sent(self) -> None:
        # The API answers 400 to "event_id": null (or any optional field null but default_method).
        cid = customer("none")
        event = {"customer_id": cid, "method_id": "visa", "event_id": None, "amount": None, "currency": None, "decision_id": None}
        sent = self.sk.send_feedback(event)  # type: ignore[arg-type]
        self.assertTrue(sent["event_id"].startswith("evt_"))
        self.assertEqual(self.sk.send_feedback_batch([event])["accepted"], 1)  # type: ignore[list-item]
        exported = eventually(lambda: self.sk.export_customer(cid), lambda e: len(e["usage_events"]) >= 2)
        self.assertEqual(len(exported["usage_events"]), 2)

    def test_an_empty_idempotency_key_is_a_400_not_a_generated_key(self) -> None:
        with self.assertRaises(Tap2Error) as caught:
            self.sk.send_feedback_batch([{"customer_id": customer("emptykey"), "method_id": "visa"}], idempotency_key="")
        self.assertEqual((caught.exception.status, caught.exception.code), (400, "VALIDATION_ERROR"))

    def test_delete_restore_export(self) -> None:
        cid = customer("rights")
        self.sk.put_preferences(cid, favorite_methods=["ideal"])
        deleted = self.sk.delete_customer(cid)
        self.assertEqual((deleted["customer_id"], deleted["status"]), (cid, "pending_deletion"))
        purge_after = datetime.fromisoformat(deleted["purge_after"].replace("Z", "+00:00"))
        self.assertGreater(purge_after, datetime.now(timezone.utc) + timedelta(days=29))
        self.assertEqual(self.sk.get_preferences(cid)["favorite_methods"], [])
        self.assertEqual(self.sk.export_customer(cid)["status"], "pending_deletion")

        self.assertEqual(self.sk.restore_customer(cid), {"customer_id": cid, "status": "active"})
        self.assertEqual(self.sk.export_customer(cid)["status"], "active")
        self.assertEqual(self.sk.get_preferences(cid)["favorite_methods"], ["ideal"])

    def test_calls_taking_a_customer_id_the_catalog_and_analytics_name_the_merchant_its_own_accepted_another_403(self) -> None:
        cid = customer("merchant")
        own = env("TAP2_MERCHANT_ID")
        self.assertEqual(self.sk.get_preferences(cid, merchant_id=own)["merchant_id"], own)
        self.assertEqual(self.sk.get_consent(cid, merchant_id=own)["entries"], [])
        self.assertTrue(self.sk.get_payment_methods(merchant_id=own))
        self.assertEqual(self.sk.get_analytics_summary(merchant_id=own)["merchant_id"], own)
        self.assertEqual(self.sk.get_analytics_timeseries("decisions", merchant_id=own)["metric"], "decisions")
        calls: List[Callable[[], Any]] = [
            lambda: self.sk.get_analytics_summary(merchant_id="m_someone_else"),
            lambda: self.sk.get_analytics_timeseries("decisions", merchant_id="m_someone_else"),
            lambda: self.sk.get_preferences(cid, merchant_id="m_someone_else"),
            lambda: self.sk.get_consent(cid, merchant_id="m_someone_else"),
            lambda: self.sk.export_customer(cid, merchant_id="m_someone_else"),
            lambda: self.sk.delete_customer(cid, merchant_id="m_someone_else"),
            lambda: self.sk.restore_customer(cid, merchant_id="m_someone_else"),
            lambda: self.sk.get_payment_methods(merchant_id="m_someone_else"),
        ]
        for call in calls:
            with self.assertRaises(Tap2Error) as caught:
                call()
            self.assertEqual(caught.exception.status, 403)
        self.assertEqual(self.sk.delete_customer(cid, merchant_id=own)["status"], "pending_deletion")
        self.assertEqual(self.sk.export_customer(cid, merchant_id=own)["status"], "pending_deletion")
        self.assertEqual(self.sk.restore_customer(cid, merchant_id=own), {"customer_id": cid, "status": "active"})

    def test_a_customer_id_is_one_path_segment_or_query_value_whatever_it_holds(self) -> None:
        # The API refuses an id outside its charset (400), never reaching another customer or route.
        # The same table is in the TypeScript (live.test.ts) and PHP (live_test.php) tests.
        cid = customer("ids")
        self.sk.put_preferences(cid, default_method="visa")
        message = "customer_id: must be 1-128 characters of A-Z a-z 0-9 . _ : @ -"
        for suffix in ["/x", "?x=1", "#x", "%41", " x", "+x", "ключ", "/restore"]:
            for call in (self.sk.export_customer, self.sk.get_preferences, self.sk.delete_customer, self.sk.restore_customer):
                with self.subTest(suffix=suffix, call=call.__name__):
                    with self.assertRaises(Tap2Error) as caught:
                        call(cid + suffix)
                    self.assertEqual((caught.exception.status, caught.exception.code, caught.exception.message), (400, "VALIDATION_ERROR", message))
        self.assertEqual(self.sk.get_preferences(cid)["default_method"], "visa")  # not deleted by a delete of id?x=1
        reserved = f"{cid}:x@y.z-"
        self.assertEqual(self.sk.export_customer(reserved)["customer_id"], reserved)
        self.assertEqual(self.sk.get_preferences(reserved)["customer_id"], reserved)
        # An amount computed as a float (price * 100) is the integer it is, as in the other clients and in a body.
        res = self.sk.get_methods(cid, country="US", currency="USD", amount=4999.0)  # type: ignore[arg-type]
        self.assertGreater(len(res["methods"]), 0)

    def test_errors_carry_code_message_request_id(self) -> None:
        bad = Client("tp2_sk_not_a_real_key_000000000000000000", self.base_url)
        with self.assertRaises(Tap2Error) as caught:
            bad.get_preferences("cus_1")
        err = caught.exception
        self.assertEqual((err.status, err.code), (401, "INVALID_API_KEY"))
        self.assertRegex(err.request_id or "", r"^req_")
        self.assertTrue(err.message)

        with self.assertRaises(Tap2Error) as caught:
            Client(env("TAP2_PUBLISHABLE_KEY"), self.base_url).get_preferences("cus_1")
        self.assertEqual((caught.exception.status, caught.exception.code), (403, "KEY_NOT_ALLOWED"))

        with self.assertRaises(Tap2Error) as caught:
            self.sk.put_preferences(customer("invalid"), default_method="klarna", excluded_methods=["klarna"])
        self.assertEqual((caught.exception.status, caught.exception.code), (400, "VALIDATION_ERROR"))
        self.assertTrue(caught.exception.details)

    def test_checkout_session(self) -> None:
        session = self.sk.create_checkout_session(customer("checkout"), amount=9900, currency="USD")
        self.assertTrue(session["id"].startswith("cs_"))
        self.assertTrue(session["client_secret"].startswith(session["id"] + "_secret_"))
        self.assertEqual((session["merchant_id"], session["amount"], session["currency"]), (env("TAP2_MERCHANT_ID"), 9900, "USD"))
        # The same request under the same Idempotency-Key answers the same session.
        key = "cs_retry_" + customer("checkout")
        once = self.sk.create_checkout_session(customer("checkout"), amount=9900, currency="USD", idempotency_key=key)
        again = self.sk.create_checkout_session(customer("checkout"), amount=9900, currency="USD", idempotency_key=key)
        self.assertEqual(again, once)
        self.assertNotEqual(once["id"], session["id"])

        # The checkout page's side: the publishable key reads the order through the session's secret.
        pk = Client(env("TAP2_PUBLISHABLE_KEY"), self.base_url)
        res = pk.get_methods(client_secret=session["client_secret"], device_type="mobile", country="US")
        self.assertTrue(res["decision_id"])
        self.assertTrue(res["methods"])
        with self.assertRaises(Tap2Error) as caught:
            pk.get_methods(client_secret=session["client_secret"] + "x")
        self.assertEqual((caught.exception.status, caught.exception.code), (401, "INVALID_CLIENT_SECRET"))

    def test_analytics_summary_counts_a_decision_just_made(self) -> None:
        self.sk.get_methods(customer("analytics"), device_type="mobile", country="US")

        def decisions(s: Any) -> int:
            return int(s["arms"]["treatment"]["decisions"]) + int(s["arms"]["holdout"]["decisions"])

        # Decisions reach the summary through the analytics queue: wait for the consumer.
        summary = eventually(self.sk.get_analytics_summary, lambda s: decisions(s) >= 1)
        self.assertEqual(summary["merchant_id"], env("TAP2_MERCHANT_ID"))
        self.assertGreaterEqual(decisions(summary), 1)

    def test_rate_limited_merchant_429_then_retry_waits_it_out(self) -> None:
        no_retry = Client(env("TAP2_LIMITED_SECRET_KEY"), self.base_url, max_retries=0)
        limited = None
        for _ in range(10):
            try:
                no_retry.get_preferences(customer("limited"))
            except Tap2Error as err:
                limited = err
                break
        self.assertIsNotNone(limited)
        assert limited is not None
        self.assertEqual((limited.status, limited.code), (429, "RATE_LIMITED"))
        self.assertGreaterEqual(limited.retry_after or 0, 1)

        waits: List[float] = []

        def sleep(seconds: float) -> None:
            waits.append(seconds)
            time.sleep(seconds)

        patient = Client(env("TAP2_LIMITED_SECRET_KEY"), self.base_url, max_retries=5, sleep=sleep)
        self.assertEqual(patient.get_preferences(customer("limited"))["customer_id"], customer("limited"))
        self.assertTrue(waits)
        self.assertGreaterEqual(waits[0], 1)


if __name__ == "__main__":
    unittest.main()
