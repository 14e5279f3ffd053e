<?php

declare(strict_types=1);

namespace Tap2\Personalize;

/** Sends one request. Throws Tap2Exception (TIMEOUT, NETWORK_ERROR) when no answer arrives. */
interface Transport
{
    /** @param array<string, string> $headers */
    public function send(string $method, string $url, #[\SensitiveParameter] array $headers, ?string $body, float $timeout): HttpResponse;
}
