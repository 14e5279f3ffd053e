<?php

declare(strict_types=1);

namespace Tap2\Personalize;

/** The default transport: ext-curl, one handle reused (keep-alive) across calls. */
final class CurlTransport implements Transport
{
    private ?\CurlHandle $handle = null;

    public function send(string $method, string $url, #[\SensitiveParameter] array $headers, ?string $body, float $timeout): HttpResponse
    {
        $this->handle ??= curl_init();
        $ch = $this->handle;
        curl_reset($ch);

        $received = [];
        $lines = [];
        foreach ($headers as $name => $value) {
            // curl drops a line "Name: " with nothing after the colon; "Name;" is its way to send a
            // header with an empty value. An empty Idempotency-Key must reach the API (a 400),
            // not vanish and leave a batch the client would resend unkeyed after a 503.
            $lines[] = $value === '' ? $name . ';' : $name . ': ' . $value;
        }
        $timeoutMs = max(1, (int) round($timeout * 1000));
        curl_setopt_array($ch, [
            CURLOPT_URL => $url,
            CURLOPT_CUSTOMREQUEST => $method,
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_HTTPHEADER => $lines,
            CURLOPT_TIMEOUT_MS => $timeoutMs,
            CURLOPT_CONNECTTIMEOUT_MS => $timeoutMs,
            CURLOPT_NOSIGNAL => true,
            CURLOPT_HEADERFUNCTION => static function ($_ch, string $line) use (&$received): int {
                $parts = explode(':', $line, 2);
                if (count($parts) === 2) {
                    $received[strtolower(trim($parts[0]))] = trim($parts[1]);
                } elseif (str_starts_with($line, 'HTTP/')) {
                    $received = []; // a new status line (e.g. after 100 Continue): keep the last answer's headers only
                }
                return strlen($line);
            },
        ]);
        if ($body !== null) {
            curl_setopt($ch, CURLOPT_POSTFIELDS, $body);
        }

        $result = curl_exec($ch);
        if ($result === false) {
            $errno = curl_errno($ch);
            $error = curl_error($ch);
            if ($errno === CURLE_OPERATION_TIMEDOUT) {
                throw new Tap2Exception('TIMEOUT', sprintf('No answer within %s s', $timeout));
            }
            throw new Tap2Exception('NETWORK_ERROR', 'Request failed: ' . $error);
        }
        return new HttpResponse((int) curl_getinfo($ch, CURLINFO_RESPONSE_CODE), $received, (string) $result);
    }
}
