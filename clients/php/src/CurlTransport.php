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
            // Never follow a redirect (curl's default, said here): the API never redirects, and a
            // followed one would carry X-API-Key to whatever host it names. Client turns the 3xx into REDIRECT.
            CURLOPT_FOLLOWLOCATION => false,
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
                throw new Tap2Exception('TIMEOUT', self::timeoutMessage($timeout));
            }
            throw new Tap2Exception('NETWORK_ERROR', self::networkErrorMessage($errno, $error));
        }
        return new HttpResponse((int) curl_getinfo($ch, CURLINFO_RESPONSE_CODE), $received, (string) $result);
    }

    /** "No answer within 10 s" (seconds, up to 3 decimals): the TypeScript and Python clients say the same. */
    public static function timeoutMessage(float $seconds): string
    {
        return 'No answer within ' . rtrim(rtrim(sprintf('%.3f', $seconds), '0'), '.') . ' s';
    }

    /**
     * The message of a NETWORK_ERROR, in the same words as the TypeScript and Python clients for the
     * failures all three can tell apart; else curl's own text.
     */
    public static function networkErrorMessage(int $errno, string $error): string
    {
        return match ($errno) {
            CURLE_COULDNT_CONNECT => 'Request failed: could not connect to the server',
            CURLE_COULDNT_RESOLVE_HOST => 'Request failed: could not resolve the host name',
            CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE, CURLE_RECV_ERROR, CURLE_SEND_ERROR => 'Request failed: the connection closed before the whole answer arrived',
            CURLE_WEIRD_SERVER_REPLY => 'Request failed: the answer is not valid HTTP',
            CURLE_UNSUPPORTED_PROTOCOL => str_contains($error, 'HTTP/0.9') ? 'Request failed: the answer is not valid HTTP' : 'Request failed: ' . $error,
            default => 'Request failed: ' . $error,
        };
    }
}
