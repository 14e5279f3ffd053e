<?php

declare(strict_types=1);

// What the client makes of answers (a scripted transport, no server): a success of the wrong shape is
// INVALID_RESPONSE, never a warning, a TypeError or a silent [] (docs/clients.md, "One error type").

use Tap2\Personalize\Client;
use Tap2\Personalize\HttpResponse;

function answeringClient(int $status, string $body, ?ScriptedTransport &$transport = null): Client
{
    $transport = new ScriptedTransport([new HttpResponse($status, ['x-request-id' => 'req_shape', 'content-type' => 'application/json'], $body)]);
    $sleeps = [];
    return scriptedClient($transport, $sleeps, ['maxRetries' => 0]);
}

/** Every call whose answer is JSON, and the problem named when the field it promises is missing. */
function shapeCalls(): array
{
    return [
        'getMethods' => [fn (Client $c) => $c->getMethods(['customer_id' => 'cus_1']), '"methods" is not an array'],
        'getOffers' => [fn (Client $c) => $c->getOffers(['customer_id' => 'cus_1']), '"offers" is not an array'],
        'sendFeedbackBatch' => [fn (Client $c) => $c->sendFeedbackBatch([['customer_id' => 'cus_1', 'method_id' => 'visa']]), '"accepted" is not a number'],
        'getPreferences' => [fn (Client $c) => $c->getPreferences('cus_1'), null],
        'putPreferences' => [fn (Client $c) => $c->putPreferences(['customer_id' => 'cus_1', 'favorite_methods' => []]), '"preferences" is not an object'],
        'getConsent' => [fn (Client $c) => $c->getConsent('cus_1'), '"entries" is not an array'],
        'createCheckoutSession' => [fn (Client $c) => $c->createCheckoutSession(['customer_id' => 'cus_1']), '"client_secret" is not a string'],
        'deleteCustomer' => [fn (Client $c) => $c->deleteCustomer('cus_1'), null],
        'restoreCustomer' => [fn (Client $c) => $c->restoreCustomer('cus_1'), null],
        'exportCustomer' => [fn (Client $c) => $c->exportCustomer('cus_1'), null],
        'getAnalyticsSummary' => [fn (Client $c) => $c->getAnalyticsSummary(), null],
        'getAnalyticsTimeseries' => [fn (Client $c) => $c->getAnalyticsTimeseries(['metric' => 'conversion_rate']), '"points" is not an array'],
        'getPaymentMethods' => [fn (Client $c) => $c->getPaymentMethods(), '"methods" is not an array'],
    ];
}

test('answers: a success that is not a JSON object ([], "x", null, 7, true, empty) is INVALID_RESPONSE with its status and request id', function (): void {
    foreach (shapeCalls() as $name => [$call]) {
        foreach (['[]', '"x"', 'null', '7', 'true', ''] as $body) {
            $e = assertThrows(fn () => $call(answeringClient(200, $body)));
            assertSame([200, 'INVALID_RESPONSE', 'req_shape', 'Unexpected answer: not a JSON object'], [$e->status, $e->errorCode, $e->requestId, $e->getMessage()], "$name, body $body");
        }
    }
});

test('answers: an object without the promised field is INVALID_RESPONSE naming it; {} passes where nothing more is promised', function (): void {
    $wrong = '{"methods":{},"offers":"x","accepted":"3","preferences":[],"entries":null,"client_secret":1,"points":{}}';
    foreach (shapeCalls() as $name => [$call, $missing]) {
        foreach (['{}', $wrong] as $body) {
            if ($missing === null) {
                assertTrue(is_array($call(answeringClient(200, $body))), "$name, body $body: an array");
                continue;
            }
            $e = assertThrows(fn () => $call(answeringClient(200, $body)));
            assertSame(['INVALID_RESPONSE', "Unexpected answer: $missing"], [$e->errorCode, $e->getMessage()], "$name, body $body");
        }
    }
});

test('answers: answers of the promised shape pass through; sendFeedback promises nothing but the 2xx', function (): void {
    assertSame([['method_id' => 'visa']], answeringClient(200, '{"methods":[{"method_id":"visa"}],"extra":1}')->getPaymentMethods());
    assertSame(['accepted' => 2, 'idempotency_key' => 'k'], answeringClient(202, '{"accepted":2}')->sendFeedbackBatch([], 'k'));
    $event = ['customer_id' => 'c', 'method_id' => 'visa', 'event_id' => 'e1'];
    assertSame(['event_id' => 'e1'], answeringClient(204, '')->sendFeedback($event));
    assertSame(['event_id' => 'e1'], answeringClient(200, '[]')->sendFeedback($event));
});

test('error answers give the same code, message and request id as the TypeScript and Python clients', function (): void {
    $notAnApiError = fn (int $status) => "HTTP $status (the answer is not an API error body)";
    // [what, status, body, code, message, request id, details]: the same table as the other clients' tests.
    $cases = [
        ["a proxy's HTML page", 502, '<html><body><h1>502 Bad Gateway</h1></body></html>', 'HTTP_502', $notAnApiError(502), 'req_hdr', null],
        ['an empty body', 504, '', 'HTTP_504', $notAnApiError(504), 'req_hdr', null],
        ['JSON that is not an error body', 500, '[{"error":1}]', 'HTTP_500', $notAnApiError(500), 'req_hdr', null],
        ['an error that is a string', 500, '{"error":"boom"}', 'HTTP_500', $notAnApiError(500), 'req_hdr', null],
        ['an error without a code', 500, '{"error":{"message":"m"}}', 'HTTP_500', $notAnApiError(500), 'req_hdr', null],
        ['an error whose code is a number', 500, '{"error":{"code":5,"message":"m"}}', 'HTTP_500', $notAnApiError(500), 'req_hdr', null],
        ['an error without a message', 503, '{"error":{"code":"UNAVAILABLE"}}', 'UNAVAILABLE', 'HTTP 503', 'req_hdr', null],
        ['an error with odd request_id and details', 400, '{"error":{"code":"VALIDATION_ERROR","message":"bad","request_id":7,"details":"x"}}', 'VALIDATION_ERROR', 'bad', 'req_hdr', null],
        ['a whole API error', 400, '{"error":{"code":"VALIDATION_ERROR","message":"bad","request_id":"req_body","details":[{"path":"a","message":"b"}]}}', 'VALIDATION_ERROR', 'bad', 'req_body', [['path' => 'a', 'message' => 'b']]],
    ];
    foreach ($cases as [$what, $status, $body, $code, $message, $requestId, $details]) {
        $t = new ScriptedTransport([new HttpResponse($status, ['x-request-id' => 'req_hdr', 'content-type' => 'text/html'], $body)]);
        $sleeps = [];
        $e = assertThrows(fn () => scriptedClient($t, $sleeps, ['maxRetries' => 0])->getConsent('cus_1'));
        assertSame([$status, $code, $message, $requestId, $details], [$e->status, $e->errorCode, $e->getMessage(), $e->requestId, $e->details], $what);
    }
});
