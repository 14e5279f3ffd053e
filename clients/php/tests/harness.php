<?php

declare(strict_types=1);

// A tiny assert-based runner (no Composer or PHPUnit needed): test() registers, runTests() runs,
// prints each result and "N passed, M failed, K skipped", and returns the exit code.

final class SkipTest extends \Exception
{
}

final class AssertionFailed extends \Exception
{
}

/** @var array<string, callable> */
$GLOBALS['__tests'] = [];

function test(string $name, callable $fn): void
{
    $GLOBALS['__tests'][$name] = $fn;
}

function skip(string $why): never
{
    throw new SkipTest($why);
}

function fail(string $message): never
{
    throw new AssertionFailed($message);
}

function assertSame(mixed $expected, mixed $actual, string $what = ''): void
{
    if ($expected !== $actual) {
        fail(($what !== '' ? "$what: " : '') . 'expected ' . var_export($expected, true) . ', got ' . var_export($actual, true));
    }
}

function assertTrue(bool $condition, string $what): void
{
    if (!$condition) {
        fail($what);
    }
}

/** Runs $fn, asserts it throws Tap2Exception, returns it. */
function assertThrows(callable $fn): \Tap2\Personalize\Tap2Exception
{
    try {
        $fn();
    } catch (\Tap2\Personalize\Tap2Exception $e) {
        return $e;
    }
    fail('expected a Tap2Exception');
}

function runTests(?string $filter = null): int
{
    $passed = $failed = $skipped = 0;
    foreach ($GLOBALS['__tests'] as $name => $fn) {
        if ($filter !== null && !str_contains($name, $filter)) {
            continue;
        }
        try {
            $fn();
            $passed++;
            echo "  ok    $name\n";
        } catch (SkipTest $e) {
            $skipped++;
            echo "  skip  $name: {$e->getMessage()}\n";
        } catch (\Throwable $e) {
            $failed++;
            echo "  FAIL  $name\n        " . get_class($e) . ': ' . $e->getMessage() . "\n        at " . $e->getFile() . ':' . $e->getLine() . "\n";
        }
    }
    echo "\n$passed passed, $failed failed, $skipped skipped\n";
    return $failed > 0 || $passed === 0 ? 1 : 0;
}
