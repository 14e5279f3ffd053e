<?php

declare(strict_types=1);

namespace Tap2\Personalize;

/**
 * Client of the Tap2 Personalize API's merchant-backend calls. Bodies and answers are the API's
 * JSON as PHP arrays. Every failure throws Tap2Exception.
 *
 * 429 answers, and 503 answers to a request that is safe to resend (mayRetry()), are retried up to
 * $maxRetries times, waiting the server's Retry-After (or an exponential backoff with jitter when it
 * sends none); a wait longer than $maxRetryDelay seconds is not waited out. $timeout is in seconds,
 * per attempt.
 */
final class Client
{
    public const VERSION = '0.1.0';
    public const DEFAULT_BASE_URL = 'https://api.tap2-personalize.com';
    /** Methods whose repeat does what the first did (RFC 9110 §9.2.2), so a 503 may be resent. */
    private const IDEMPOTENT_METHODS = ['GET', 'HEAD', 'PUT', 'DELETE'];

    /**
     * The keys, out of every instance: var_export(), an (array) cast and get_mangled_object_vars()
     * show all properties, private ones too, and ignore __debugInfo(). A client holds only an empty
     * handle to its key ($keyHandle); a clone shares it, and the entry goes with the last one.
     *
     * @var \WeakMap<\stdClass, string>|null
     */
    private static ?\WeakMap $keys = null;

    private readonly \stdClass $keyHandle;
    private readonly string $baseUrl;
    private readonly Transport $transport;
    /** @var callable(float): void */
    private $sleep;

    /** @param (callable(float): void)|null $sleep how to wait between retries (tests) */
    public function __construct(
        #[\SensitiveParameter] string $apiKey,
        string $baseUrl = self::DEFAULT_BASE_URL,
        private readonly float $timeout = 10.0,
        private readonly int $maxRetries = 2,
        private readonly float $maxRetryDelay = 30.0,
        private readonly float $retryBaseDelay = 0.25,
        ?Transport $transport = null,
        ?callable $sleep = null,
    ) {
        if ($apiKey === '') {
            throw new \InvalidArgumentException('apiKey is required');
        }
        $this->keyHandle = new \stdClass();
        self::$keys ??= new \WeakMap();
        self::$keys[$this->keyHandle] = $apiKey;
        $this->baseUrl = rtrim($baseUrl, '/');
        $this->transport = $transport ?? new CurlTransport();
        $this->sleep = $sleep ?? static function (float $seconds): void {
            usleep((int) round($seconds * 1_000_000));
        };
    }

    /**
     * What var_dump() and print_r() show of a client: everything but the key (a dumped client, or an
     * exception trace holding one, must not put the secret key into a log). var_export() and casts
     * find no key in the object either (see $keys).
     *
     * @return array<string, mixed>
     */
    public function __debugInfo(): array
    {
        return ['apiKey' => substr($this->apiKey(), 0, 7) . '…', 'baseUrl' => $this->baseUrl, 'timeout' => $this->timeout, 'maxRetries' => $this->maxRetries];
    }

    private function apiKey(): string
    {
        return self::$keys[$this->keyHandle];
    }

    /** @param array<string, mixed> $query customer_id (or client_secret), device_type, country, amount, currency, timezone, merchant_id */
    public function getMethods(array $query): array
    {
        return $this->request('GET', '/v1/personalize/methods', $query, shape: ['methods' => 'array']);
    }

    /** @param array<string, mixed> $query as for getMethods() */
    public function getOffers(array $query): array
    {
        return $this->request('GET', '/v1/personalize/offers', $query, shape: ['offers' => 'array']);
    }

    /**
     * Reports the method the customer paid with (204). Without event_id one is generated; the same
     * one is sent on every retry, so the event is stored once. A null field is not sent (the API
     * refuses null), so 'event_id' => null gets a generated one too.
     *
     * @param array<string, mixed> $event customer_id, method_id, and optional amount, currency, …
     * @return array{event_id: string}
     */
    public function sendFeedback(array $event): array
    {
        $event = self::withoutNulls($event);
        $event['event_id'] ??= self::newIdempotencyKey('evt');
        $this->request('POST', '/v1/personalize/feedback', null, $event, shape: null);
        return ['event_id' => (string) $event['event_id']];
    }

    /**
     * Up to 100 events (202). Events without event_id get ids derived from the batch's
     * Idempotency-Key, generated here unless given, and the same on every retry. Null fields are not sent.
     *
     * @param list<array<string, mixed>> $events
     * @return array{accepted: int, idempotency_key: string}
     */
    public function sendFeedbackBatch(array $events, ?string $idempotencyKey = null): array
    {
        $key = $idempotencyKey ?? self::newIdempotencyKey('batch');
        $data = $this->request('POST', '/v1/personalize/feedback/batch', null, ['events' => array_map(self::withoutNulls(...), array_values($events))], ['Idempotency-Key' => $key], ['accepted' => 'number']);
        return ['accepted' => (int) $data['accepted'], 'idempotency_key' => $key];
    }

    /** $merchantId, on every call that takes only a customer id: API.md §1, the key's own or omitted (another is 403). */
    public function getPreferences(string $customerId, ?string $merchantId = null): array
    {
        return $this->request('GET', '/v1/personalize/preferences', ['customer_id' => $customerId, 'merchant_id' => $merchantId]);
    }

    /**
     * Changes the given fields; the others keep their values. 'default_method' => null clears it;
     * any other null field is not sent (the API refuses null there).
     *
     * @param array<string, mixed> $update customer_id and any of default_method, favorite_methods,
     *   excluded_methods, personalization_enabled, cross_merchant_consent
     */
    public function putPreferences(array $update): array
    {
        return $this->request('PUT', '/v1/personalize/preferences', null, self::withoutNulls($update, 'default_method'), shape: ['preferences' => 'object']);
    }

    public function getConsent(string $customerId, ?string $merchantId = null): array
    {
        return $this->request('GET', '/v1/personalize/consent', ['customer_id' => $customerId, 'merchant_id' => $merchantId], shape: ['entries' => 'array']);
    }

    /**
     * Opens a checkout session; hand its client_secret to the checkout page (secret key). An
     * Idempotency-Key, generated here unless given, goes with every retry, so a retry answers the
     * same session instead of opening a second one.
     *
     * @param array<string, mixed> $session customer_id, and optional amount, currency, country, device_type, expires_in (null: not sent)
     */
    public function createCheckoutSession(array $session, ?string $idempotencyKey = null): array
    {
        $key = $idempotencyKey ?? self::newIdempotencyKey('cs');
        return $this->request('POST', '/v1/checkout/sessions', null, self::withoutNulls($session), ['Idempotency-Key' => $key], ['client_secret' => 'string']);
    }

    /** Starts the deletion (202); the data is purged after the grace period. */
    public function deleteCustomer(string $customerId, ?string $merchantId = null): array
    {
        return $this->request('DELETE', '/v1/personalize/customers/' . rawurlencode($customerId), ['merchant_id' => $merchantId]);
    }

    /** Cancels a pending deletion within the grace period (404 NOT_FOUND after the purge). */
    public function restoreCustomer(string $customerId, ?string $merchantId = null): array
    {
        return $this->request('POST', '/v1/personalize/customers/' . rawurlencode($customerId) . '/restore', ['merchant_id' => $merchantId]);
    }

    /** Everything stored about the customer for this merchant. */
    public function exportCustomer(string $customerId, ?string $merchantId = null): array
    {
        return $this->request('GET', '/v1/personalize/customers/' . rawurlencode($customerId) . '/export', ['merchant_id' => $merchantId]);
    }

    /** @param array{from?: string, to?: string, merchant_id?: string} $query ISO 8601 UTC; default the last 7 days */
    public function getAnalyticsSummary(array $query = []): array
    {
        return $this->request('GET', '/v1/analytics/summary', $query);
    }

    /** @param array<string, mixed> $query metric, and optional granularity, from, to, currency, merchant_id */
    public function getAnalyticsTimeseries(array $query): array
    {
        return $this->request('GET', '/v1/analytics/timeseries', $query, shape: ['points' => 'array']);
    }

    /** The catalog of payment methods. */
    public function getPaymentMethods(?string $merchantId = null): array
    {
        return $this->request('GET', '/v1/payment-methods', ['merchant_id' => $merchantId], shape: ['methods' => 'array'])['methods'];
    }

    /**
     * A body without its null fields: null means "not given", as in a query (and as None in the
     * Python client, undefined in TypeScript). $keep is a field where null means something.
     *
     * @param array<string, mixed> $fields
     * @return array<string, mixed>
     */
    private static function withoutNulls(array $fields, string ...$keep): array
    {
        return array_filter($fields, static fn ($value, $name) => $value !== null || in_array($name, $keep, true), ARRAY_FILTER_USE_BOTH);
    }

    /** A key in the API's id charset ([A-Za-z0-9._:@-], at most 128 characters). */
    public static function newIdempotencyKey(string $prefix): string
    {
        return $prefix . '_' . bin2hex(random_bytes(16));
    }

    /** The longest Retry-After the clients read, in seconds: a longer one (or one that overflows) is this (RFC 9111 §1.2.2). */
    public const MAX_RETRY_AFTER_SECONDS = 2147483648.0;

    /**
     * Retry-After in seconds: delta-seconds (digits, optionally a decimal fraction) or an HTTP-date
     * (parseHttpDate()); null when absent or anything else ("nan", "inf", "-1", "+5", "1e3", "0x10"),
     * so the caller backs off. A value past MAX_RETRY_AFTER_SECONDS is capped to it. The TypeScript
     * and Python clients read it the same way.
     */
    public static function parseRetryAfter(?string $value, ?float $now = null): ?float
    {
        if ($value === null) {
            return null;
        }
        $value = trim($value, " \t");
        if (preg_match('/^[0-9]+(?:\.[0-9]+)?\z/', $value) === 1) {
            $seconds = (float) $value;
        } else {
            $now ??= microtime(true);
            $when = self::parseHttpDate($value, $now);
            $seconds = $when === null ? null : max(0.0, $when - $now);
        }
        return $seconds === null ? null : min($seconds, self::MAX_RETRY_AFTER_SECONDS);
    }

    private const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
    private const MONTH = '(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)';

    /**
     * An HTTP-date (RFC 9110 §5.6.7) in seconds since the epoch, or null: IMF-fixdate
     * ("Sun, 06 Nov 1994 08:49:37 GMT") and the obsolete RFC 850 ("Sunday, 06-Nov-94 08:49:37 GMT")
     * and asctime ("Sun Nov  6 08:49:37 1994", UTC) forms, exactly (case and spaces included), with a
     * real calendar date; nothing else (strtotime() also takes "tomorrow", "+1 week", "now").
     * The TypeScript and Python clients parse the same forms.
     */
    public static function parseHttpDate(string $value, float $now): ?float
    {
        $m = self::MONTH;
        if (preg_match("/^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), ([0-9]{2}) $m ([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) GMT\\z/", $value, $g) === 1
            || preg_match("/^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), ([0-9]{2})-$m-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) GMT\\z/", $value, $g) === 1) {
            [, $day, $month, $year, $hour, $minute, $second] = $g;
        } elseif (preg_match("/^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) $m ( [0-9]|[0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) ([0-9]{4})\\z/", $value, $g) === 1) {
            [, $month, $day, $hour, $minute, $second, $year] = $g;
        } else {
            return null;
        }
        $y = (int) $year;
        if (strlen($year) === 2) {
            // RFC 9110: a two-digit year more than 50 years ahead is the latest past year with those digits.
            $thisYear = (int) gmdate('Y', (int) floor($now));
            $y += $thisYear - $thisYear % 100;
            if ($y > $thisYear + 50) {
                $y -= 100;
            }
        }
        [$d, $mo, $h, $mi, $s] = [(int) trim($day), array_search($month, self::MONTHS, true) + 1, (int) $hour, (int) $minute, (int) $second];
        if ($d < 1 || $d > self::daysInMonth($y, $mo) || $h > 23 || $mi > 59 || $s > 60) {
            return null;
        }
        return (float) (((self::daysFromCivil($y, $mo, $d) * 24 + $h) * 60 + $mi) * 60 + $s);
    }

    private static function daysInMonth(int $year, int $month): int
    {
        if ($month === 2) {
            return $year % 4 === 0 && ($year % 100 !== 0 || $year % 400 === 0) ? 29 : 28;
        }
        return in_array($month, [4, 6, 9, 11], true) ? 30 : 31;
    }

    /** Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's days_from_civil). */
    private static function daysFromCivil(int $year, int $month, int $day): int
    {
        $y = $month <= 2 ? $year - 1 : $year;
        $era = intdiv($y - ($y < 0 ? 399 : 0), 400);
        $yoe = $y - $era * 400;
        $doy = intdiv(153 * ($month + ($month > 2 ? -3 : 9)) + 2, 5) + $day - 1;
        $doe = $yoe * 365 + intdiv($yoe, 4) - intdiv($yoe, 100) + $doy;
        return $era * 146097 + $doe - 719468;
    }

    /** Seconds before retry number $retry (0-based): Retry-After wins, else exponential backoff with jitter. */
    public static function retryDelay(int $retry, ?float $retryAfter, float $baseDelay, ?float $random = null): float
    {
        if ($retryAfter !== null) {
            return $retryAfter;
        }
        $step = $baseDelay * (2 ** $retry);
        $random ??= mt_rand() / mt_getrandmax();
        return $step / 2 + $random * $step / 2;
    }

    /**
     * Whether this answer may be met by sending the request again. A 429 always: the rate limiter
     * refused it before anything ran. A 503 may come from a step after the write committed (a second
     * restore then answers 404), so only a request the API treats as idempotent is resent: an
     * idempotent method, an Idempotency-Key, or single feedback with its event_id (stored once per
     * (merchant, event_id)). Anything else, e.g. restoreCustomer(), returns its 503 to the caller.
     *
     * @param array<string, string> $headers
     */
    public static function mayRetry(int $status, string $method, string $url, #[\SensitiveParameter] array $headers, ?string $payload): bool
    {
        if ($status === 429) {
            return true;
        }
        if ($status !== 503) {
            return false;
        }
        if (in_array($method, self::IDEMPOTENT_METHODS, true) || in_array('idempotency-key', array_map('strtolower', array_keys($headers)), true)) {
            return true;
        }
        $path = (string) parse_url($url, PHP_URL_PATH);
        $event = $payload === null ? null : json_decode($payload, true);
        return $method === 'POST' && str_ends_with($path, '/v1/personalize/feedback') && is_array($event) && is_string($event['event_id'] ?? null);
    }

    /**
     * @param array<string, mixed>|null $query
     * @param array<string, mixed>|null $body
     * @param array<string, string> $headers
     * @param array<string, string>|null $shape what a success must be (shapeProblem()); null for a
     *   route that promises no body (feedback, 204), whose answer is then not read
     */
    private function request(string $method, string $path, ?array $query = null, ?array $body = null, #[\SensitiveParameter] array $headers = [], ?array $shape = []): array
    {
        $url = $this->baseUrl . $path;
        $queryString = $query ? http_build_query(array_filter($query, static fn ($v) => $v !== null), '', '&', PHP_QUERY_RFC3986) : '';
        if ($queryString !== '') {
            $url .= '?' . $queryString;
        }
        $headers = ['X-API-Key' => $this->apiKey(), 'Accept' => 'application/json', 'User-Agent' => 'tap2-personalize-php/' . self::VERSION] + $headers;
        foreach ($headers as $name => $value) {
            // A line break in a value (a caller's Idempotency-Key, the key) would start another header
            // line; and HTTP carries only ASCII the same way in every client (RFC 9110 §5.5: VCHAR,
            // space, tab): curl sent ключ as its UTF-8 bytes, which fetch cannot send and Python's
            // http.client sends as Latin-1. The TypeScript and Python clients say the same.
            if (strpbrk($value, "\r\n\0") !== false) {
                throw new \InvalidArgumentException("The $name header cannot hold a line break or NUL");
            }
            if (preg_match('/[^\t\x20-\x7e]/', $value) === 1) {
                throw new \InvalidArgumentException("The $name header cannot hold a control character or a character outside ASCII");
            }
        }
        $payload = null;
        if ($body !== null) {
            $payload = json_encode($body, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
            $headers['Content-Type'] = 'application/json';
        }

        $response = $this->sendWithRetries($method, $url, $headers, $payload);
        if ($response->status < 200 || $response->status >= 300) {
            throw self::errorFrom($response);
        }
        if ($shape === null) {
            return [];
        }
        $requestId = $response->header('X-Request-Id');
        $decoded = null;
        if ($response->body !== '') {
            try {
                // Objects as stdClass first: decoded as arrays, {} and [] would be the same.
                $decoded = json_decode($response->body, false, 512, JSON_THROW_ON_ERROR);
            } catch (\JsonException $e) {
                throw new Tap2Exception('INVALID_RESPONSE', 'The answer is not JSON', $requestId, $response->status, null, null, $e);
            }
        }
        $problem = self::shapeProblem($decoded, $shape);
        if ($problem !== null) {
            throw new Tap2Exception('INVALID_RESPONSE', "Unexpected answer: $problem", $requestId, $response->status);
        }
        return json_decode($response->body, true, 512, JSON_THROW_ON_ERROR);
    }

    /**
     * What a success must be for the call to hand it back: a JSON object, with these fields of these
     * JSON types (the ones the client reads, or the list the answer is for); other fields are not
     * checked. The TypeScript and Python clients check the same and name a problem in the same words.
     *
     * @param array<string, string> $shape field => 'array' | 'object' | 'number' | 'string'
     */
    private static function shapeProblem(mixed $decoded, array $shape): ?string
    {
        if (!$decoded instanceof \stdClass) {
            return 'not a JSON object';
        }
        foreach ($shape as $field => $type) {
            if (self::jsonType($decoded->{$field} ?? null) !== $type) {
                return sprintf('"%s" is not %s %s', $field, in_array($type, ['array', 'object'], true) ? 'an' : 'a', $type);
            }
        }
        return null;
    }

    private static function jsonType(mixed $value): string
    {
        return match (true) {
            $value === null => 'null',
            is_bool($value) => 'boolean',
            is_int($value), is_float($value) => 'number',
            is_string($value) => 'string',
            is_array($value) => 'array',
            default => 'object',
        };
    }

    /** Sends the same request (body and idempotency key included) until its answer is not to be retried (mayRetry()), or retries run out. */
    private function sendWithRetries(string $method, string $url, #[\SensitiveParameter] array $headers, ?string $payload): HttpResponse
    {
        for ($retry = 0; ; $retry++) {
            $response = $this->transport->send($method, $url, $headers, $payload, $this->timeout);
            if ($retry >= $this->maxRetries || !self::mayRetry($response->status, $method, $url, $headers, $payload)) {
                return $response;
            }
            $delay = self::retryDelay($retry, self::parseRetryAfter($response->header('Retry-After')), $this->retryBaseDelay);
            if ($delay > $this->maxRetryDelay) {
                return $response;
            }
            ($this->sleep)($delay);
        }
    }

    /**
     * The message of a 3xx (code REDIRECT, the answer's status), whatever its body: the TypeScript and
     * Python clients say the same. A redirect usually means a wrong base URL (http:// for https://).
     */
    public const REDIRECT_MESSAGE = 'Refused a redirect (the API never redirects: check the base URL)';

    /**
     * The exception of a non-2xx answer. A 3xx is REDIRECT (self::REDIRECT_MESSAGE): it is not
     * followed, since a followed one would carry X-API-Key to whatever host it names. An API error body is {"error": {"code": "<non-empty string>",
     * …}}; anything else (a proxy's HTML page, an empty body, other JSON) is HTTP_<status> with the
     * message "HTTP <status> (the answer is not an API error body)". The TypeScript and Python
     * clients say the same.
     */
    private static function errorFrom(HttpResponse $response): Tap2Exception
    {
        $headerRequestId = $response->header('X-Request-Id');
        if ($response->status >= 300 && $response->status < 400) {
            return new Tap2Exception('REDIRECT', self::REDIRECT_MESSAGE, $headerRequestId, $response->status);
        }
        $retryAfter = self::parseRetryAfter($response->header('Retry-After'));
        $decoded = json_decode($response->body, true);
        $error = is_array($decoded) && !array_is_list($decoded) ? ($decoded['error'] ?? null) : null;
        if (!is_array($error) || !self::isNonEmptyString($error['code'] ?? null)) {
            return new Tap2Exception(
                'HTTP_' . $response->status,
                "HTTP {$response->status} (the answer is not an API error body)",
                $headerRequestId,
                $response->status,
                null,
                $retryAfter,
            );
        }
        $details = $error['details'] ?? null;
        return new Tap2Exception(
            $error['code'],
            self::isNonEmptyString($error['message'] ?? null) ? $error['message'] : 'HTTP ' . $response->status,
            self::isNonEmptyString($error['request_id'] ?? null) ? $error['request_id'] : $headerRequestId,
            $response->status,
            is_array($details) && array_is_list($details) ? $details : null,
            $retryAfter,
        );
    }

    private static function isNonEmptyString(mixed $value): bool
    {
        return is_string($value) && $value !== '';
    }
}
