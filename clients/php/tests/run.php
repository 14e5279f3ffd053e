<?php

declare(strict_types=1);

// php tests/run.php [name-filter]. The live tests need TAP2_* variables: run them with `npm run test:clients`.
error_reporting(E_ALL);
set_error_handler(static function (int $no, string $message, string $file, int $line): bool {
    throw new \ErrorException($message, 0, $no, $file, $line);
});

require __DIR__ . '/../src/autoload.php';
require __DIR__ . '/harness.php';
require __DIR__ . '/retry_test.php';
require __DIR__ . '/answers_test.php';
require __DIR__ . '/live_test.php';

exit(runTests($argv[1] ?? null));
