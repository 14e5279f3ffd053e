<?php

declare(strict_types=1);

namespace Tap2\Personalize;

/**
 * The one exception every failed call throws.
 *
 * getCode() returns the API's error code string (e.g. "INVALID_API_KEY"), like PDOException does
 * with SQLSTATE. $status is the HTTP status, or 0 when no answer arrived (code TIMEOUT or
 * NETWORK_ERROR). A 3xx answer is REDIRECT with its status (a redirect is never followed). Quote
 * $requestId to support.
 */
final class Tap2Exception extends \RuntimeException
{
    /**
     * @param list<array{path: string, message: string}>|null $details validation problems (400 VALIDATION_ERROR)
     * @param float|null $retryAfter the server's Retry-After in seconds (429/503), when sent
     */
    public function __construct(
        public readonly string $errorCode,
        string $message,
        public readonly ?string $requestId = null,
        public readonly int $status = 0,
        public readonly ?array $details = null,
        public readonly ?float $retryAfter = null,
        ?\Throwable $previous = null,
    ) {
        parent::__construct($message, 0, $previous);
        $this->code = $errorCode;
    }

    public function getErrorCode(): string
    {
        return $this->errorCode;
    }

    public function getRequestId(): ?string
    {
        return $this->requestId;
    }

    public function getStatus(): int
    {
        return $this->status;
    }
}
