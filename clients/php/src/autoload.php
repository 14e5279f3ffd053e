<?php

declare(strict_types=1);

// For use without Composer: require this file. With Composer, its PSR-4 autoload does the same.
spl_autoload_register(static function (string $class): void {
    $prefix = 'Tap2\\Personalize\\';
    if (str_starts_with($class, $prefix)) {
        $file = __DIR__ . '/' . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
        if (is_file($file)) {
            require $file;
        }
    }
});
