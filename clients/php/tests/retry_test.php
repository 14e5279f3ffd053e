<?php

declare(strict_types=1);

use Tap2\Personalize\Client;
use Tap2\Personalize\HttpResponse;
use Tap2\Personalize\Tap2Exception;
use Tap2\Personalize\Transport;

/** Answers in order and records what was sent. */
final class ScriptedTransport implements Transport
{
    /** @var list<array{method: string, url: string, headers: array<string, string>, body: ?string, timeout: float}> */
    public array $sent = [];

    /** @param list<HttpResponse|\Throwable> $answers */
    public function __construct(private array $answers)
    {
    }

    public function send(string $method, string $url, array $headers, ?string $body, float $timeout): HttpResponse
    {
        $this->sent[] = compact('method', 'url', 'headers', 'body', 'timeout');
        $answer = array_shift($this->answers);
        if ($answer instanceof \Throwable) {
            throw $answer;
        }
        return $answer ?? throw new \LogicException('no more scripted answers');
    }
}

function errorBody(string $code): string
{
    return json_encode(['error' => ['code' => $code, 'message' => strtolower($code), 'request_id' => 'req_test', 'documentation_url' => 'x']]);
}

/** @param list<float> $sleeps */
function scriptedClient(ScriptedTransport $t, array &$sleeps, array $options = []): Client
{
    return new Client(
        apiKey: 'tp2_sk_test',
        baseUrl: 'http://tap2.test/',
        timeout: $options['timeout'] ?? 10.0,
        maxRetries: $options['maxRetries'] ?? 2,
        maxRetryDelay: $options['maxRetryDelay'] ?? 30.0,
        retryBaseDelay: $options['retryBaseDelay'] ?? 0.25,
        transport: $t,
        sleep: static function (float $s) use (&$sleeps): void {
            $sleeps[] = $s;
        },
    );
}

test('429 waits Retry-After and resends the same event_id', function (): void {
    $t = new ScriptedTransport([new HttpResponse(429, ['retry-after' => '2'], errorBody('RATE_LIMITED')), new HttpResponse(204, [], '')]);
    $sleeps = [];
    $sent = scriptedClient($t, $sleeps)->sendFeedback(['customer_id' => 'cus_1', 'method_id' => 'visa']);
    assertSame([2.0], $sleeps, 'sleeps');
    assertSame(2, count($t->sent), 'attempts');
    assertSame($t->sent[0]['body'], $t->sent[1]['body'], 'same body on retry');
    assertSame($sent['event_id'], json_decode($t->sent[0]['body'], true)['event_id'], 'event_id sent');
    assertTrue((bool) preg_match('/^evt_[0-9a-f]{32}$/', $sent['event_id']), 'generated event_id format');
    assertSame('tp2_sk_test', $t->sent[0]['headers']['X-API-Key'], 'key header');
    assertSame('http://tap2.test/v1/personalize/feedback', $t->sent[0]['url'], 'url');
});

test('the caller\'s event_id is kept', function (): void {
    $t = new ScriptedTransport([new HttpResponse(204, [], '')]);
    $sleeps = [];
    $sent = scriptedClient($t, $sleeps)->sendFeedback(['customer_id' => 'c', 'method_id' => 'visa', 'event_id' => 'order_42']);
    assertSame('order_42', $sent['event_id']);
    assertSame('order_42', json_decode($t->sent[0]['body'], true)['event_id']);
});

test('503 backs off exponentially, then throws the last error; one Idempotency-Key for the batch', function (): void {
    $t = new ScriptedTransport(array_fill(0, 3, new HttpResponse(503, [], errorBody('UNAVAILABLE'))));
    $sleeps = [];
    $c = scriptedClient($t, $sleeps, ['maxRetries' => 2, 'retryBaseDelay' => 0.1]);
    $e = assertThrows(fn () => $c->sendFeedbackBatch([['customer_id' => 'c', 'method_id' => 'visa']]));
    assertSame([503, 'UNAVAILABLE', 'UNAVAILABLE', 'req_test'], [$e->status, $e->errorCode, $e->getCode(), $e->requestId]);
    assertSame(3, count($t->sent), 'attempts');
    $keys = array_unique(array_map(fn ($s) => $s['headers']['Idempotency-Key'], $t->sent));
    assertSame(1, count($keys), 'one key across retries');
    assertTrue((bool) preg_match('/^batch_[0-9a-f]{32}$/', $keys[0]), 'batch key format');
    assertSame(2, count($sleeps), 'two waits');
    assertTrue($sleeps[0] >= 0.05 && $sleeps[0] <= 0.1, 'first backoff in [0.05, 0.1]: ' . $sleeps[0]);
    assertTrue($sleeps[1] >= 0.1 && $sleeps[1] <= 0.2, 'second backoff in [0.1, 0.2]: ' . $sleeps[1]);
});

test('a POST without Idempotency-Key is sent once after a 503 (restore may have committed: a resend answers 404), but resent after a 429', function (): void {
    $t = new ScriptedTransport([new HttpResponse(503, ['retry-after' => '1'], errorBody('UNAVAILABLE')), new HttpResponse(404, [], errorBody('NOT_FOUND'))]);
    $sleeps = [];
    $e = assertThrows(fn () => scriptedClient($t, $sleeps)->restoreCustomer('cus_1'));
    assertSame([503, 'UNAVAILABLE', 1], [$e->status, $e->errorCode, count($t->sent)]);
    // Feedback without an event_id (a custom caller) would get a new id from the server on each try.
    assertSame(false, Client::mayRetry(503, 'POST', 'http://tap2.test/v1/personalize/feedback', [], '{"customer_id":"c","method_id":"visa"}'));

    $t = new ScriptedTransport([new HttpResponse(429, ['retry-after' => '1'], errorBody('RATE_LIMITED')), new HttpResponse(200, [], '{"customer_id":"cus_1","status":"active"}')]);
    assertSame(['customer_id' => 'cus_1', 'status' => 'active'], scriptedClient($t, $sleeps)->restoreCustomer('cus_1'));
    assertSame(2, count($t->sent));
});

test('a 503 is retried where resending is safe: feedback with its event_id, a session under its Idempotency-Key, a GET, a DELETE', function (): void {
    $again = fn (HttpResponse $answer) => new ScriptedTransport([new HttpResponse(503, ['retry-after' => '0'], errorBody('UNAVAILABLE')), $answer]);
    $sleeps = [];

    $t = $again(new HttpResponse(204, [], ''));
    scriptedClient($t, $sleeps)->sendFeedback(['customer_id' => 'cus_1', 'method_id' => 'visa']);
    $ids = array_map(fn ($s) => json_decode($s['body'], true)['event_id'], $t->sent);
    assertSame(2, count($ids), 'feedback attempts');
    assertSame($ids[0], $ids[1], 'same event_id');

    $t = $again(new HttpResponse(201, [], '{"id":"cs_1","client_secret":"cs_1_secret"}'));
    scriptedClient($t, $sleeps)->createCheckoutSession(['customer_id' => 'cus_1'], 'order_7');
    assertSame(['order_7', 'order_7'], array_map(fn ($s) => $s['headers']['Idempotency-Key'], $t->sent));

    $t = $again(new HttpResponse(200, [], '{"customer_id":"cus_1","entries":[],"truncated":false}'));
    scriptedClient($t, $sleeps)->getConsent('cus_1');
    assertSame(2, count($t->sent), 'GET attempts');

    $t = $again(new HttpResponse(202, [], '{"customer_id":"cus_1","status":"pending_deletion"}'));
    scriptedClient($t, $sleeps)->deleteCustomer('cus_1');
    assertSame(2, count($t->sent), 'DELETE attempts');
});

test('other errors are not retried; a long Retry-After is not waited out', function (): void {
    $t = new ScriptedTransport([new HttpResponse(400, [], errorBody('VALIDATION_ERROR'))]);
    $sleeps = [];
    $e = assertThrows(fn () => scriptedClient($t, $sleeps)->getPreferences('cus_1'));
    assertSame('VALIDATION_ERROR', $e->errorCode);
    assertSame(1, count($t->sent));

    $t = new ScriptedTransport([new HttpResponse(429, ['retry-after' => '3600'], errorBody('RATE_LIMITED'))]);
    $e = assertThrows(fn () => scriptedClient($t, $sleeps, ['maxRetryDelay' => 5.0])->getPreferences('cus_1'));
    assertSame([429, 3600.0], [$e->status, $e->retryAfter]);
    assertSame([], $sleeps);
});

test('non-JSON error bodies still become Tap2Exception', function (): void {
    $t = new ScriptedTransport([new HttpResponse(502, ['x-request-id' => 'req_gw'], '<html>bad gateway</html>')]);
    $sleeps = [];
    $e = assertThrows(fn () => scriptedClient($t, $sleeps)->getConsent('cus_1'));
    assertSame(['HTTP_502', 'req_gw', 502], [$e->errorCode, $e->requestId, $e->status]);
});

test('a real timeout is TIMEOUT and a refused connection NETWORK_ERROR', function (): void {
    $server = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
    $port = (int) substr(strrchr(stream_socket_get_name($server, false), ':'), 1);
    $e = assertThrows(fn () => (new Client('tp2_sk_test', "http://127.0.0.1:$port", timeout: 0.3, maxRetries: 0))->getConsent('c'));
    assertSame([0, 'TIMEOUT'], [$e->status, $e->errorCode]);
    fclose($server);
    $e = assertThrows(fn () => (new Client('tp2_sk_test', "http://127.0.0.1:$port", timeout: 2.0, maxRetries: 0))->getConsent('c'));
    assertSame([0, 'NETWORK_ERROR'], [$e->status, $e->errorCode]);
});

/**
 * A forked server on a free loopback port that answers its first connection, once the request
 * arrived, with $answer as raw bytes (null: silence for 1.5 s), then closes it. Returns the base URL
 * and a function that waits for the child and closes the socket. Needs pcntl.
 *
 * @return array{string, callable(): void}
 */
function serveOnce(?string $answer): array
{
    $server = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
    $port = (int) substr(strrchr(stream_socket_get_name($server, false), ':'), 1);
    $pid = pcntl_fork();
    if ($pid === 0) {
        $conn = stream_socket_accept($server, 5);
        if ($conn !== false) {
            fread($conn, 65536);
            $answer === null ? usleep(1_500_000) : fwrite($conn, $answer);
            fclose($conn);
        }
        exit(0);
    }
    return ["http://127.0.0.1:$port", static function () use ($pid, $server): void {
        pcntl_waitpid($pid, $status);
        fclose($server);
    }];
}

// The same statuses, code and message are in the TypeScript (transport.test.ts) and Python (test_transport.py) tests.
test('a 301, 302, 307 or 308 is not followed, GET or POST: REDIRECT with its status and the same message as the TypeScript and Python clients', function (): void {
    if (!function_exists('pcntl_fork')) {
        skip('needs pcntl to serve raw answers');
    }
    // Where the redirects point: never accepted, so a client that followed one would time out, and
    // a connection would wait in its backlog for the check below.
    $elsewhere = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
    $target = 'http://' . stream_socket_get_name($elsewhere, false) . '/steal';
    foreach ([301, 302, 307, 308] as $status) {
        foreach (['getConsent', 'sendFeedback'] as $call) {
            [$base, $done] = serveOnce("HTTP/1.1 $status Moved\r\nLocation: $target\r\nX-Request-Id: req_moved\r\nContent-Length: 0\r\n\r\n");
            $client = new Client('tp2_sk_test', $base, timeout: 2.0, maxRetries: 2);
            $e = assertThrows(fn () => $call === 'getConsent' ? $client->getConsent('c') : $client->sendFeedback(['customer_id' => 'cus_1', 'method_id' => 'visa']));
            $done();
            assertSame(
                [$status, 'REDIRECT', 'Refused a redirect (the API never redirects: check the base URL)', 'req_moved'],
                [$e->status, $e->errorCode, $e->getMessage(), $e->requestId],
                "$status $call",
            );
        }
    }
    [$read, $write, $except] = [[$elsewhere], null, null];
    assertSame(0, stream_select($read, $write, $except, 0), 'connections waiting at the host the redirects name');
    fclose($elsewhere);
});

// The same failures, codes and messages are in the TypeScript (transport.test.ts) and Python (test_transport.py) tests.
test('the same code and message as the TypeScript and Python clients for the same failure', function (): void {
    if (!function_exists('pcntl_fork')) {
        skip('needs pcntl to serve raw answers');
    }
    $refused = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
    $refusedPort = (int) substr(strrchr(stream_socket_get_name($refused, false), ':'), 1);
    fclose($refused);
    $cases = [
        [null, 0.25, 'TIMEOUT', 'No answer within 0.25 s'],
        [null, 1.0, 'TIMEOUT', 'No answer within 1 s'],
        ["http://127.0.0.1:$refusedPort", 2.0, 'NETWORK_ERROR', 'Request failed: could not connect to the server'],
        // No resolver can look this name up, nor asks a DNS server about it: its first label is 64
        // octets, one more than a DNS query can carry (RFC 1035 §2.3.4), so the lookup fails at once
        // without a packet sent, DNS or none; and .invalid (RFC 6761) would not resolve anyway.
        ['http://' . str_repeat('a', 64) . '.invalid', 2.0, 'NETWORK_ERROR', 'Request failed: could not resolve the host name'],
        ['', 2.0, 'NETWORK_ERROR', 'Request failed: the connection closed before the whole answer arrived'],
        ["HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"entries\":", 2.0, 'NETWORK_ERROR', 'Request failed: the connection closed before the whole answer arrived'],
        ["garbage\r\n\r\n", 2.0, 'NETWORK_ERROR', 'Request failed: the answer is not valid HTTP'],
    ];
    foreach ($cases as [$target, $timeout, $code, $message]) {
        $done = null;
        if ($target === null || !str_starts_with($target, 'http://')) {
            [$target, $done] = serveOnce($target);
        }
        $e = assertThrows(fn () => (new Client('tp2_sk_test', $target, timeout: $timeout, maxRetries: 0))->getConsent('c'));
        $done && $done();
        assertSame([$target, 0, $code, $message], [$target, $e->status, $e->errorCode, $e->getMessage()]);
    }
});

test('Retry-After parsing and backoff math', function (): void {
    assertSame(3.0, Client::parseRetryAfter('3'));
    assertSame(null, Client::parseRetryAfter(null));
    assertSame(null, Client::parseRetryAfter('soon'));
    assertSame(10.0, Client::parseRetryAfter('Thu, 01 Jan 2026 00:00:10 GMT', 1767225600.0));
    assertSame(0.1, Client::retryDelay(0, null, 0.2, 0.0));
    assertSame(1.6, Client::retryDelay(3, null, 0.2, 1.0));
    assertSame(1.5, Client::retryDelay(5, 1.5, 0.2));
});

// The same vectors are in the TypeScript (retry.test.ts) and Python (test_retry.py) tests.
const RETRY_NOW = 1767225600.0; // Thu, 01 Jan 2026 00:00:00 GMT

test('Retry-After reads only the HTTP-date forms of RFC 9110 (IMF-fixdate, RFC 850, asctime, all UTC)', function (): void {
    $valid = [
        ['Thu, 01 Jan 2026 00:00:10 GMT', 10.0],
        ["  Thu, 01 Jan 2026 00:00:10 GMT\t", 10.0],
        ['Thursday, 01-Jan-26 00:00:10 GMT', 10.0],
        ['Friday, 01-Jan-27 00:00:00 GMT', 365 * 86400.0],
        ['Friday, 01-Jan-99 00:00:00 GMT', 0.0], // 1999, not 2099 (more than 50 years ahead)
        ['Thu Jan  1 00:00:10 2026', 10.0],
        ['Thu Jan 01 00:00:10 2026', 10.0],
        ['Sun, 06 Nov 1994 08:49:37 GMT', 0.0],
        ['Sat, 29 Feb 2028 00:00:00 GMT', (365 + 365 + 31 + 28) * 86400.0],
    ];
    foreach ($valid as [$value, $seconds]) {
        assertSame([$value, $seconds], [$value, Client::parseRetryAfter($value, RETRY_NOW)]);
    }
    $invalid = [
        'tomorrow', '+1 week', 'next monday', 'now', 'Jan 1 2030', '2026-01-01T00:00:10Z', 'thu, 01 Jan 2026 00:00:10 GMT',
        'Thu, 01 Jan 2026 00:00:10 +0000', 'Thu, 01 Jan 2026 00:00:10 UTC', 'Thu, 01 Jan 2026 00:00:10', 'Thu, 1 Jan 2026 00:00:10 GMT',
        'Thu,  01 Jan 2026 00:00:10 GMT', 'Thu, 31 Feb 2026 00:00:10 GMT', 'Thu, 29 Feb 2026 00:00:10 GMT', 'Thu, 01 Jan 2026 24:00:00 GMT',
        'Thu, 01 Jan 26 00:00:10 GMT', 'Thursday, 01-Jan-2026 00:00:10 GMT', 'Thu Jan 1 00:00:10 2026', 'Thu Jan  1 00:00:10 2026 GMT',
        "Thu, 01 Jan 2026 00:00:10 GMT\n",
    ];
    foreach ($invalid as $value) {
        assertSame([$value, null], [$value, Client::parseRetryAfter($value, RETRY_NOW)]);
    }
});

test('a Retry-After that is not an HTTP-date ("tomorrow", "+1 week") is absent: the client backs off', function (): void {
    foreach (['tomorrow', '+1 week'] as $value) {
        $t = new ScriptedTransport([new HttpResponse(429, ['retry-after' => $value], errorBody('RATE_LIMITED')), new HttpResponse(200, [], '{"customer_id":"c","entries":[]}')]);
        $sleeps = [];
        (new Client('tp2_sk_test', 'http://tap2.test', retryBaseDelay: 0.1, transport: $t, sleep: function (float $s) use (&$sleeps): void {
            $sleeps[] = $s;
        }))->getConsent('c');
        assertSame(1, count($sleeps), $value);
        assertTrue($sleeps[0] >= 0.05 && $sleeps[0] <= 0.1, "$value: waited {$sleeps[0]} s");
    }
});

test('Retry-After delta-seconds are digits only (optionally a fraction); a huge one is capped at 2^31 s', function (): void {
    $valid = [
        ['0', 0.0], ['3', 3.0], ["  3\t", 3.0], ['1.5', 1.5], ['007', 7.0], ['2147483648', 2.0 ** 31], ['2147483649', 2.0 ** 31],
        [str_repeat('9', 400), 2.0 ** 31], ['Fri, 31 Dec 9999 23:59:59 GMT', 2.0 ** 31],
    ];
    foreach ($valid as [$value, $seconds]) {
        assertSame([$value, $seconds], [$value, Client::parseRetryAfter($value, RETRY_NOW)]);
    }
    $invalid = ['', ' ', 'nan', 'NaN', 'inf', 'Infinity', '-Infinity', '-1', '-0', '+5', '1e400', '1e3', '1E3', '0x10', '1.', '.5', '1,5', '5 s', '5s', '1_000', "\u{0663}", "3\n"];
    foreach ($invalid as $value) {
        assertSame([$value, null], [$value, Client::parseRetryAfter($value, RETRY_NOW)]);
    }
});

test('an unreadable Retry-After (nan, inf, -1, 1e400) is absent: the client backs off; a huge one is raised at once, capped', function (): void {
    foreach (['nan', 'inf', '-1', '1e400'] as $value) {
        $t = new ScriptedTransport([new HttpResponse(429, ['retry-after' => $value], errorBody('RATE_LIMITED')), new HttpResponse(200, [], '{"customer_id":"c","entries":[]}')]);
        $sleeps = [];
        (new Client('tp2_sk_test', 'http://tap2.test', retryBaseDelay: 0.1, transport: $t, sleep: function (float $s) use (&$sleeps): void {
            $sleeps[] = $s;
        }))->getConsent('c');
        assertSame([$value, 1, true], [$value, count($sleeps), $sleeps[0] >= 0.05 && $sleeps[0] <= 0.1]);
    }
    $t = new ScriptedTransport([new HttpResponse(429, ['retry-after' => str_repeat('9', 400)], errorBody('RATE_LIMITED'))]);
    $sleeps = [];
    $e = assertThrows(fn () => (new Client('tp2_sk_test', 'http://tap2.test', transport: $t, sleep: function (float $s) use (&$sleeps): void {
        $sleeps[] = $s;
    }))->getConsent('c'));
    assertSame([429, 2.0 ** 31, [], 1], [$e->status, $e->retryAfter, $sleeps, count($t->sent)]);
});

test('a header value with a line break (a caller\'s Idempotency-Key) is refused before anything is sent', function (): void {
    $t = new ScriptedTransport([]);
    $sleeps = [];
    $client = scriptedClient($t, $sleeps);
    foreach (["order-1\r\nX-API-Key: tp2_sk_other", "order-1\nx", "order\0"] as $key) {
        $refused = false;
        try {
            $client->sendFeedbackBatch([['customer_id' => 'c', 'method_id' => 'visa']], $key);
        } catch (\InvalidArgumentException) {
            $refused = true;
        }
        assertTrue($refused, 'refused: ' . json_encode($key));
    }
    assertSame([], $t->sent);
});

test('a header value with a control character or a character outside ASCII (ключ, café, €) is refused before anything is sent; visible ASCII, space and tab are sent as given', function (): void {
    // The same table is in the TypeScript (retry.test.ts) and Python (test_retry.py) tests.
    $refused = ['ключ', 'café', '€1', "a\u{a0}b", "a\u{1}b", "a\u{1b}b", "a\u{7f}b"];
    $sent = ['order #1001 /x?%&=', "a\tb", '~!@$^*()[]{}|\\"\'`<>,;:+'];
    $answers = [];
    foreach ($sent as $_) {
        $answers[] = new HttpResponse(202, [], '{"accepted":1}');
        $answers[] = new HttpResponse(201, [], '{"client_secret":"cs_x_secret_y"}');
    }
    $t = new ScriptedTransport($answers);
    $sleeps = [];
    $client = scriptedClient($t, $sleeps);
    $message = static fn (string $name): string => "The $name header cannot hold a control character or a character outside ASCII";
    $refusal = static function (callable $call): string {
        try {
            $call();
        } catch (\InvalidArgumentException $e) {
            return $e->getMessage();
        }
        return 'not refused';
    };
    foreach ($refused as $key) {
        $what = json_encode($key);
        assertSame($message('Idempotency-Key'), $refusal(fn () => $client->sendFeedbackBatch([['customer_id' => 'c', 'method_id' => 'visa']], $key)), "batch $what");
        assertSame($message('Idempotency-Key'), $refusal(fn () => $client->createCheckoutSession(['customer_id' => 'c'], $key)), "session $what");
        assertSame($message('X-API-Key'), $refusal(fn () => (new Client("tp2_sk_$key", 'http://tap2.test/', transport: $t))->getConsent('c')), "key $what");
    }
    assertSame([], $t->sent);
    foreach ($sent as $key) {
        $client->sendFeedbackBatch([['customer_id' => 'c', 'method_id' => 'visa']], $key);
        $client->createCheckoutSession(['customer_id' => 'c'], $key);
    }
    assertSame(array_merge(...array_map(fn ($k) => [$k, $k], $sent)), array_map(fn ($s) => $s['headers']['Idempotency-Key'], $t->sent));
});

test('the secret key is not in a dumped client or in the trace of an exception (even with zend.exception_ignore_args off)', function (): void {
    $previous = ini_set('zend.exception_ignore_args', '0'); // PHP's built-in default and php.ini-development
    try {
        $server = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
        $port = (int) substr(strrchr(stream_socket_get_name($server, false), ':'), 1);
        fclose($server); // nothing listens: NETWORK_ERROR, thrown from inside the transport
        $client = new Client('tp2_sk_DoNotLogThisKey', "http://127.0.0.1:$port", timeout: 2.0, maxRetries: 0);
        $e = assertThrows(fn () => $client->sendFeedbackBatch([['customer_id' => 'cus_1', 'method_id' => 'visa']], 'order_1'));
        assertSame('NETWORK_ERROR', $e->errorCode);
        foreach (['print_r($e)' => print_r($e, true), 'var_export(trace)' => var_export($e->getTrace(), true), '(string) $e' => (string) $e, 'print_r($client)' => print_r($client, true)] as $what => $text) {
            assertTrue(!str_contains($text, 'DoNotLogThisKey'), "$what holds the key");
        }
        ob_start();
        var_dump($client);
        assertTrue(!str_contains((string) ob_get_clean(), 'DoNotLogThisKey'), 'var_dump($client) holds the key');
    } finally {
        ini_set('zend.exception_ignore_args', $previous === false ? '1' : $previous);
    }
});

test('null means not given in every body, as in a query; only putPreferences\' default_method => null is sent (it clears it)', function (): void {
    // The API refuses JSON null for every optional field but default_method (400 VALIDATION_ERROR).
    $unset = ['merchant_id' => null, 'amount' => null, 'currency' => null, 'device_type' => null, 'location_country' => null, 'decision_id' => null, 'offer_id' => null, 'occurred_at' => null];
    $t = new ScriptedTransport([
        new HttpResponse(204, [], ''),
        new HttpResponse(202, [], '{"accepted":1}'),
        new HttpResponse(201, [], '{"client_secret":"s"}'),
        new HttpResponse(200, [], '{"updated":true,"preferences":{}}'),
        new HttpResponse(200, [], '{"updated":true,"preferences":{}}'),
    ]);
    $sleeps = [];
    $c = scriptedClient($t, $sleeps);
    $sent = $c->sendFeedback(['customer_id' => 'c', 'method_id' => 'visa', 'event_id' => null] + $unset);
    assertSame(['customer_id' => 'c', 'method_id' => 'visa', 'event_id' => $sent['event_id']], json_decode($t->sent[0]['body'], true), 'feedback body');
    $c->sendFeedbackBatch([['customer_id' => 'c', 'method_id' => 'visa', 'event_id' => null] + $unset]);
    assertSame(['events' => [['customer_id' => 'c', 'method_id' => 'visa']]], json_decode($t->sent[1]['body'], true), 'batch body');
    $c->createCheckoutSession(['customer_id' => 'c', 'amount' => null, 'currency' => null, 'country' => null, 'device_type' => null, 'expires_in' => null, 'merchant_id' => null]);
    assertSame(['customer_id' => 'c'], json_decode($t->sent[2]['body'], true), 'session body');
    $c->putPreferences(['customer_id' => 'c', 'favorite_methods' => null, 'excluded_methods' => null, 'personalization_enabled' => null, 'cross_merchant_consent' => null, 'merchant_id' => null]);
    assertSame(['customer_id' => 'c'], json_decode($t->sent[3]['body'], true), 'preferences body');
    $c->putPreferences(['customer_id' => 'c', 'default_method' => null]);
    assertSame('{"customer_id":"c","default_method":null}', $t->sent[4]['body'], 'default_method null is sent');
});

test('the secret key is in no export of a client: var_export, an (array) cast, get_mangled_object_vars, serialize; a clone still sends it', function (): void {
    $t = new ScriptedTransport([new HttpResponse(200, [], '{"customer_id":"c"}'), new HttpResponse(200, [], '{"customer_id":"c"}')]);
    $client = new Client('tp2_sk_DoNotLogThisKey', 'http://tap2.test', transport: $t, sleep: static function (float $s): void {
    });
    $copy = clone $client;
    $dumps = [
        'var_export($client)' => var_export($client, true),
        'var_export(clone)' => var_export($copy, true),
        'print_r((array) $client)' => print_r((array) $client, true),
        'var_export((array) $client)' => var_export((array) $client, true),
        'get_mangled_object_vars($client)' => var_export(get_mangled_object_vars($client), true),
        'json_encode($client)' => (string) json_encode($client),
    ];
    try {
        $dumps['serialize($client)'] = serialize($client);
    } catch (\Throwable $e) {
        $dumps['serialize($client) refused'] = $e->getMessage();
    }
    foreach ($dumps as $what => $text) {
        assertTrue(!str_contains($text, 'DoNotLogThisKey'), "$what holds the key");
    }
    $client->getPreferences('c');
    $copy->getPreferences('c');
    assertSame(['tp2_sk_DoNotLogThisKey', 'tp2_sk_DoNotLogThisKey'], array_map(fn ($s) => $s['headers']['X-API-Key'], $t->sent), 'the client and its clone send the key');
    assertTrue(str_contains(print_r($client, true), 'tp2_sk_…'), 'print_r shows the key prefix only');
});
