<?php

declare(strict_types=1);

// Against the real worker started by `npm run test:clients` (scripts/clients/test.mjs).

use Tap2\Personalize\Client;
use Tap2\Personalize\Tap2Exception;

function env(string $name): string
{
    $value = getenv($name);
    if ($value === false || $value === '') {
        throw new \RuntimeException("$name is not set: run these tests with `npm run test:clients`");
    }
    return $value;
}

function customer(string $name): string
{
    static $run = null;
    $run ??= base_convert((string) (int) (microtime(true) * 1000), 10, 36);
    return "php_{$name}_{$run}";
}

function secretClient(): Client
{
    return new Client(env('TAP2_SECRET_KEY'), env('TAP2_BASE_URL'), timeout: 15.0);
}

function eventually(callable $read, callable $ok, float $timeout = 15.0): mixed
{
    $deadline = microtime(true) + $timeout;
    while (true) {
        $value = $read();
        if ($ok($value) || microtime(true) > $deadline) {
            return $value;
        }
        usleep(300_000);
    }
}

test('live: preferences put/get roundtrip and the consent log', function (): void {
    $sk = secretClient();
    $id = customer('prefs');
    $defaults = $sk->getPreferences($id);
    assertSame([$id, true, null, []], [$defaults['customer_id'], $defaults['personalization_enabled'], $defaults['default_method'], $defaults['favorite_methods']]);

    $put = $sk->putPreferences(['customer_id' => $id, 'default_method' => 'paypal', 'favorite_methods' => ['paypal', 'visa'], 'personalization_enabled' => false]);
    assertSame(true, $put['updated']);
    $read = $sk->getPreferences($id);
    assertSame(['paypal', ['paypal', 'visa'], false], [$read['default_method'], $read['favorite_methods'], $read['personalization_enabled']]);

    $sk->putPreferences(['customer_id' => $id, 'default_method' => null]);
    assertSame(null, $sk->getPreferences($id)['default_method'], 'default_method cleared');

    $entries = $sk->getConsent($id)['entries'];
    $found = array_filter($entries, fn ($e) => $e['consent_type'] === 'personalization' && $e['action'] === 'revoked' && $e['merchant_id'] === env('TAP2_MERCHANT_ID'));
    assertTrue(count($found) === 1, 'one personalization revoked entry');
});

test('live: methods, never an excluded one', function (): void {
    $sk = secretClient();
    $id = customer('methods');
    $sk->putPreferences(['customer_id' => $id, 'excluded_methods' => ['klarna']]);
    $res = $sk->getMethods(['customer_id' => $id, 'device_type' => 'mobile', 'country' => 'US', 'amount' => 4999, 'currency' => 'USD']);
    $ids = array_column($res['methods'], 'method_id');
    assertTrue(count($ids) > 0, 'some methods');
    assertTrue(!in_array('klarna', $ids, true), 'klarna excluded');
    assertSame([], array_values(array_diff($ids, explode(',', env('TAP2_METHODS')))), 'only enabled methods');
    assertTrue(is_string($res['decision_id']) && $res['decision_id'] !== '', 'decision_id');
    assertTrue(array_sum(array_column($res['methods'], 'confidence')) <= 1.000001, 'confidences sum to at most 1');
    assertSame('no_history', $res['fallback_reason'] ?? null);
});

test('live: offers are the configured ones', function (): void {
    $res = secretClient()->getOffers(['customer_id' => customer('offers'), 'device_type' => 'mobile', 'country' => 'US', 'amount' => 5000, 'currency' => 'USD']);
    // Both configured offers fit a mobile USD basket in the US; nothing else is configured.
    $ids = array_column($res['offers'], 'offer_id');
    sort($ids);
    assertSame(['applepay_5off', 'paypal_2off'], $ids, 'offers');
});

test('live: feedback 204 stored once per event_id; batch 202', function (): void {
    $sk = secretClient();
    $id = customer('feedback');
    $first = $sk->sendFeedback(['customer_id' => $id, 'method_id' => 'visa', 'amount' => 1200, 'currency' => 'USD']);
    assertTrue(str_starts_with($first['event_id'], 'evt_'), 'generated event_id');
    $sk->sendFeedback(['customer_id' => $id, 'method_id' => 'visa', 'amount' => 1200, 'currency' => 'USD', 'event_id' => $first['event_id']]);
    $batch = $sk->sendFeedbackBatch([['customer_id' => $id, 'method_id' => 'paypal'], ['customer_id' => $id, 'method_id' => 'apple_pay', 'event_id' => "{$id}_b2"]]);
    assertSame(2, $batch['accepted']);
    assertTrue(str_starts_with($batch['idempotency_key'], 'batch_'), 'batch key');

    $exported = eventually(fn () => $sk->exportCustomer($id), fn ($e) => count($e['usage_events']) >= 3);
    $ids = array_column($exported['usage_events'], 'event_id');
    assertSame(1, count(array_keys($ids, $first['event_id'], true)), 'repeated event stored once');
    assertTrue(in_array("{$id}_b2", $ids, true), 'batch event with its own id');
    assertSame(3, count($ids), 'three events');
});

test('live: a null optional field is not sent (the API refuses null)', function (): void {
    $sk = secretClient();
    $id = customer('nulls');
    $event = ['customer_id' => $id, 'method_id' => 'visa', 'event_id' => null, 'amount' => null, 'currency' => null, 'decision_id' => null];
    assertTrue(str_starts_with($sk->sendFeedback($event)['event_id'], 'evt_'), 'generated event_id');
    assertSame(1, $sk->sendFeedbackBatch([$event])['accepted']);
    $session = $sk->createCheckoutSession(['customer_id' => $id, 'amount' => null, 'expires_in' => null]);
    assertTrue(is_string($session['client_secret']), 'a session');
    $exported = eventually(fn () => $sk->exportCustomer($id), fn ($e) => count($e['usage_events']) >= 2);
    assertSame(2, count($exported['usage_events']), 'two events');
});

test('live: an empty Idempotency-Key is sent as given (a 400), not dropped by curl (an unkeyed batch that a 503 retry would duplicate)', function (): void {
    $e = assertThrows(fn () => secretClient()->sendFeedbackBatch([['customer_id' => customer('emptykey'), 'method_id' => 'visa']], ''));
    assertSame([400, 'VALIDATION_ERROR'], [$e->status, $e->errorCode]);
});

test('live: delete, restore, export', function (): void {
    $sk = secretClient();
    $id = customer('rights');
    $sk->putPreferences(['customer_id' => $id, 'favorite_methods' => ['ideal']]);
    $deleted = $sk->deleteCustomer($id);
    assertSame([$id, 'pending_deletion'], [$deleted['customer_id'], $deleted['status']]);
    assertTrue(strtotime($deleted['purge_after']) > time() + 29 * 86400, 'purge_after ~30 days out');
    assertSame([], $sk->getPreferences($id)['favorite_methods'], 'preferences read as defaults');
    assertSame('pending_deletion', $sk->exportCustomer($id)['status']);

    assertSame(['customer_id' => $id, 'status' => 'active'], $sk->restoreCustomer($id));
    assertSame('active', $sk->exportCustomer($id)['status']);
    assertSame(['ideal'], $sk->getPreferences($id)['favorite_methods'], 'preferences back');
});

test('live: calls taking a customer id, the catalog and analytics name the merchant: its own accepted, another 403', function (): void {
    $sk = secretClient();
    $id = customer('merchant');
    $own = env('TAP2_MERCHANT_ID');
    assertSame($own, $sk->getPreferences($id, $own)['merchant_id']);
    assertSame([], $sk->getConsent($id, $own)['entries']);
    assertTrue(count($sk->getPaymentMethods($own)) > 0, 'catalog');
    assertSame($own, $sk->getAnalyticsSummary(['merchant_id' => $own])['merchant_id']);
    assertSame('decisions', $sk->getAnalyticsTimeseries(['metric' => 'decisions', 'merchant_id' => $own])['metric']);
    foreach ([
        fn () => $sk->getAnalyticsSummary(['merchant_id' => 'm_someone_else']),
        fn () => $sk->getAnalyticsTimeseries(['metric' => 'decisions', 'merchant_id' => 'm_someone_else']),
        fn () => $sk->getPreferences($id, 'm_someone_else'),
        fn () => $sk->getConsent($id, 'm_someone_else'),
        fn () => $sk->exportCustomer($id, 'm_someone_else'),
        fn () => $sk->deleteCustomer($id, 'm_someone_else'),
        fn () => $sk->restoreCustomer($id, 'm_someone_else'),
        fn () => $sk->getPaymentMethods('m_someone_else'),
    ] as $call) {
        assertSame(403, assertThrows($call)->status);
    }
    assertSame('pending_deletion', $sk->deleteCustomer($id, $own)['status']);
    assertSame('pending_deletion', $sk->exportCustomer($id, $own)['status']);
    assertSame(['customer_id' => $id, 'status' => 'active'], $sk->restoreCustomer($id, $own));
});

test('live: errors carry code, message and request id', function (): void {
    $bad = new Client('tp2_sk_not_a_real_key_000000000000000000', env('TAP2_BASE_URL'));
    $e = assertThrows(fn () => $bad->getPreferences('cus_1'));
    assertSame([401, 'INVALID_API_KEY', 'INVALID_API_KEY'], [$e->status, $e->errorCode, $e->getCode()]);
    assertTrue((bool) preg_match('/^req_/', (string) $e->requestId), 'request id');
    assertTrue($e->getMessage() !== '', 'message');

    $pk = new Client(env('TAP2_PUBLISHABLE_KEY'), env('TAP2_BASE_URL'));
    $e = assertThrows(fn () => $pk->getPreferences('cus_1'));
    assertSame([403, 'KEY_NOT_ALLOWED'], [$e->status, $e->errorCode]);

    $e = assertThrows(fn () => secretClient()->putPreferences(['customer_id' => customer('invalid'), 'default_method' => 'klarna', 'excluded_methods' => ['klarna']]));
    assertSame([400, 'VALIDATION_ERROR'], [$e->status, $e->errorCode]);
    assertTrue(is_array($e->details) && count($e->details) > 0, 'details');
});

test('live: checkout session', function (): void {
    $s = secretClient()->createCheckoutSession(['customer_id' => customer('checkout'), 'amount' => 9900, 'currency' => 'USD']);
    assertTrue(str_starts_with($s['id'], 'cs_'), 'session id');
    assertTrue(str_starts_with($s['client_secret'], $s['id'] . '_secret_'), 'client secret');
    assertSame([env('TAP2_MERCHANT_ID'), 9900, 'USD'], [$s['merchant_id'], $s['amount'], $s['currency']]);
    // The same request under the same Idempotency-Key answers the same session.
    $key = 'cs_retry_' . customer('checkout');
    $once = secretClient()->createCheckoutSession(['customer_id' => customer('checkout'), 'amount' => 9900, 'currency' => 'USD'], $key);
    $again = secretClient()->createCheckoutSession(['customer_id' => customer('checkout'), 'amount' => 9900, 'currency' => 'USD'], $key);
    assertSame($once, $again);
    assertTrue($once['id'] !== $s['id'], 'a keyed session is another session');

    // The checkout page's side: the publishable key reads the order through the session's secret.
    $pk = new Client(env('TAP2_PUBLISHABLE_KEY'), env('TAP2_BASE_URL'));
    $res = $pk->getMethods(['client_secret' => $s['client_secret'], 'device_type' => 'mobile', 'country' => 'US']);
    assertTrue($res['decision_id'] !== '' && count($res['methods']) > 0, 'methods through the session');
    $e = assertThrows(fn () => $pk->getMethods(['client_secret' => $s['client_secret'] . 'x']));
    assertSame([401, 'INVALID_CLIENT_SECRET'], [$e->status, $e->errorCode]);
});

test('live: analytics summary counts a decision just made', function (): void {
    $sk = secretClient();
    $sk->getMethods(['customer_id' => customer('analytics'), 'device_type' => 'mobile', 'country' => 'US']);
    $decisions = fn (array $s): int => $s['arms']['treatment']['decisions'] + $s['arms']['holdout']['decisions'];
    // Decisions reach the summary through the analytics queue: wait for the consumer.
    $summary = eventually(fn () => $sk->getAnalyticsSummary(), fn ($s) => $decisions($s) >= 1);
    assertSame(env('TAP2_MERCHANT_ID'), $summary['merchant_id']);
    assertTrue($decisions($summary) >= 1, 'the decision is counted: ' . $decisions($summary));
});

test('live: a rate-limited merchant answers 429, and the client waits it out when allowed to retry', function (): void {
    $noRetry = new Client(env('TAP2_LIMITED_SECRET_KEY'), env('TAP2_BASE_URL'), maxRetries: 0);
    $limited = null;
    for ($i = 0; $i < 10 && $limited === null; $i++) {
        try {
            $noRetry->getPreferences(customer('limited'));
        } catch (Tap2Exception $e) {
            $limited = $e;
        }
    }
    assertTrue($limited !== null, 'a 429 within 10 calls');
    assertSame([429, 'RATE_LIMITED'], [$limited->status, $limited->errorCode]);
    assertTrue(($limited->retryAfter ?? 0) >= 1, 'Retry-After >= 1');

    $waits = [];
    $patient = new Client(env('TAP2_LIMITED_SECRET_KEY'), env('TAP2_BASE_URL'), maxRetries: 5, sleep: function (float $s) use (&$waits): void {
        $waits[] = $s;
        usleep((int) ($s * 1_000_000));
    });
    assertSame(customer('limited'), $patient->getPreferences(customer('limited'))['customer_id']);
    assertTrue(count($waits) > 0 && $waits[0] >= 1, 'waited Retry-After');
});

test('live: a customer id is one path segment or query value, whatever it holds: the API refuses one outside its charset (400), never reaching another customer or route', function (): void {
    // The same table is in the TypeScript (live.test.ts) and Python (test_live.py) tests.
    $sk = secretClient();
    $id = customer('ids');
    $sk->putPreferences(['customer_id' => $id, 'default_method' => 'visa']);
    $message = 'customer_id: must be 1-128 characters of A-Z a-z 0-9 . _ : @ -';
    foreach (['/x', '?x=1', '#x', '%41', ' x', '+x', 'ключ', '/restore'] as $suffix) {
        foreach (['exportCustomer', 'getPreferences', 'deleteCustomer', 'restoreCustomer'] as $call) {
            $e = assertThrows(fn () => $sk->$call($id . $suffix));
            assertSame([400, 'VALIDATION_ERROR', $message], [$e->status, $e->errorCode, $e->getMessage()], "$call " . json_encode($suffix));
        }
    }
    assertSame('visa', $sk->getPreferences($id)['default_method'], 'not deleted by a delete of id?x=1');
    $reserved = "$id:x@y.z-";
    assertSame($reserved, $sk->exportCustomer($reserved)['customer_id']);
    assertSame($reserved, $sk->getPreferences($reserved)['customer_id']);
    assertTrue(count($sk->getMethods(['customer_id' => $id, 'country' => 'US', 'currency' => 'USD', 'amount' => 4999.0])['methods']) > 0, 'a float amount');
});
