"""The standard-library transport against a raw socket server (no worker needed): every failure is a
Tap2Error, and the timeout bounds the whole attempt, headers and body included (docs/clients.md)."""

import socket
import threading
import time
import unittest
from typing import Any, Callable, List
from unittest import mock

from tap2_personalize import Client, Tap2Error


def serve_once(handler: Callable[[socket.socket], None]) -> str:
    """Listens on a free port, hands the first connection (its request read) to handler; the base URL."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]

    def run() -> None:
        conn, _ = srv.accept()
        try:
            conn.recv(65536)
            handler(conn)
        except OSError:
            pass
        finally:
            conn.close()
            srv.close()

    threading.Thread(target=run, daemon=True).start()
    return f"http://127.0.0.1:{port}"


#: A host name no resolver can look up, and none asks a DNS server about: its first label is 64
#: octets, one more than a DNS query can carry (RFC 1035 §2.3.4); and .invalid (RFC 6761) would not
#: resolve anyway. The TypeScript and PHP tests use the same name.
UNRESOLVABLE = "http://" + "a" * 64 + ".invalid"


def failure(base: str, timeout: float) -> Tap2Error:
    try:
        Client("tp2_sk_test", base, timeout=timeout, max_retries=0).get_consent("cus_1")
    except Tap2Error as err:
        return err
    raise AssertionError("no Tap2Error")


class TransportTest(unittest.TestCase):
    def test_a_body_that_trickles_in_is_cut_at_the_attempts_timeout(self) -> None:
        def trickle(conn: socket.socket) -> None:
            body = b'{"customer_id":"c","entries":[]}' + b" " * 60
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
            for i in range(len(body)):  # ~4.6 s in all, never a second of silence
                conn.sendall(body[i : i + 1])
                time.sleep(0.05)

        started = time.monotonic()
        err = failure(serve_once(trickle), 1.0)
        self.assertEqual((err.code, err.status), ("TIMEOUT", 0))
        self.assertLess(time.monotonic() - started, 2.5)

    def test_headers_that_trickle_in_are_cut_at_the_attempts_timeout(self) -> None:
        def trickle(conn: socket.socket) -> None:
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            for i in range(8):  # a header line every 0.5 s: 4 s in all, never a second of silence
                time.sleep(0.5)
                conn.sendall(b"X-Slow-%d: x\r\n" % i)
            conn.sendall(b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")

        started = time.monotonic()
        err = failure(serve_once(trickle), 1.0)
        self.assertEqual((err.code, err.status), ("TIMEOUT", 0))
        self.assertLess(time.monotonic() - started, 1.5)

    def test_an_error_body_that_stalls_is_a_timeout(self) -> None:
        def stall(conn: socket.socket) -> None:
            conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
            time.sleep(2)

        self.assertEqual(failure(serve_once(stall), 0.5).code, "TIMEOUT")

    def test_a_body_cut_short_is_a_network_error(self) -> None:
        def cut(conn: socket.socket) -> None:
            conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"entries":')

        self.assertEqual(failure(serve_once(cut), 2.0).code, "NETWORK_ERROR")

    def test_an_answer_that_closes_the_connection_is_read_to_its_end_and_the_socket_closed(self) -> None:
        # http.client closes the connection after the headers of such an answer and reads the body
        # through the response's file; the socket must stay open until then (a proxy's error page,
        # HTTP/1.0, Connection: close). The body comes in a later packet than the headers.
        closed = []

        def answer(head: bytes, body: bytes) -> Callable[[socket.socket], None]:
            def handler(conn: socket.socket) -> None:
                conn.sendall(head)
                time.sleep(0.2)
                conn.sendall(body)
                if b"Content-Length" in head:
                    conn.settimeout(2)
                    closed.append(conn.recv(1) == b"")  # the client closed its end once done

            return handler

        page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
        err = failure(serve_once(answer(b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n", page)), 2.0)
        self.assertEqual((err.status, err.code), (502, "HTTP_502"))

        base = serve_once(answer(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 32\r\nConnection: close\r\n\r\n", b'{"entries":[],"truncated":false}'))
        self.assertEqual(Client("tp2_sk_test", base, timeout=2.0, max_retries=0).get_consent("cus_1"), {"entries": [], "truncated": False})

        base = serve_once(answer(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n", b'{"entries":[],"truncated":false}'))
        self.assertEqual(Client("tp2_sk_test", base, timeout=2.0, max_retries=0).get_consent("cus_1")["entries"], [])
        self.assertEqual(closed, [True])

    def test_a_body_read_until_close_that_trickles_in_is_still_cut_at_the_timeout(self) -> None:
        def trickle(conn: socket.socket) -> None:
            conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n")
            for _ in range(40):  # 4 s in all, never a second of silence
                conn.sendall(b"<p>")
                time.sleep(0.1)

        started = time.monotonic()
        self.assertEqual(failure(serve_once(trickle), 1.0).code, "TIMEOUT")
        self.assertLess(time.monotonic() - started, 1.5)

    def test_a_slow_dns_lookup_is_cut_at_the_attempts_timeout(self) -> None:
        # socket.getaddrinfo takes no timeout; a resolver that does not answer (its own retries take
        # 10 s and more) must not hold the call past the client's timeout.
        real = socket.getaddrinfo
        base = serve_once(lambda conn: conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"))
        port = int(base.rsplit(":", 1)[1])

        def slow_lookup(delay: float) -> Callable[..., List[Any]]:
            def getaddrinfo(host: str, *args: Any, **kwargs: Any) -> List[Any]:
                flags = kwargs.get("flags", args[4] if len(args) > 4 else 0)
                if host != "api.tap2.test" or flags & socket.AI_NUMERICHOST:  # not a name lookup
                    return real(host, *args, **kwargs)
                time.sleep(delay)
                return real("127.0.0.1", port, socket.AF_INET, socket.SOCK_STREAM)

            return getaddrinfo

        with mock.patch("socket.getaddrinfo", slow_lookup(3.0)):
            started = time.monotonic()
            err = failure(f"http://api.tap2.test:{port}", 0.5)
            self.assertEqual((err.code, err.status), ("TIMEOUT", 0))
            self.assertLess(time.monotonic() - started, 1.0)
        with mock.patch("socket.getaddrinfo", slow_lookup(0.3)):  # a lookup within the timeout: answered
            self.assertEqual(Client("tp2_sk_test", f"http://api.tap2.test:{port}", timeout=2.0, max_retries=0).get_preferences("cus_1"), {})

    def test_an_unknown_host_is_a_network_error(self) -> None:
        # What getaddrinfo raises for a name without an address (EAI_NONAME) and with no DNS server
        # answering (EAI_AGAIN), mocked: a real lookup of a real name needs the machine's DNS.
        for code, text in ((socket.EAI_NONAME, "Name or service not known"), (socket.EAI_AGAIN, "Temporary failure in name resolution")):

            def unknown(host: str, *args: Any, code: int = code, text: str = text, **kwargs: Any) -> List[Any]:
                raise socket.gaierror(code, text)

            with mock.patch("socket.getaddrinfo", unknown):
                err = failure("http://nowhere.tap2.test", 2.0)
            self.assertEqual((err.code, err.status, err.message), ("NETWORK_ERROR", 0, "Request failed: could not resolve the host name"))

    def test_a_host_name_no_resolver_can_look_up_is_a_network_error_not_a_unicode_error(self) -> None:
        # The socket module's idna codec raised UnicodeError ("label empty or too long") for it,
        # out of the client. The same name as the TypeScript and PHP tests (real lookup, no mock):
        # a 64-octet label cannot be put in a DNS query, so no packet is sent, DNS or none.
        for base in (UNRESOLVABLE, "http://api..tap2.test"):
            err = failure(base, 2.0)
            self.assertEqual((base, err.code, err.status, err.message), (base, "NETWORK_ERROR", 0, "Request failed: could not resolve the host name"))

    # The same failures, codes and messages are in the TypeScript (transport.test.ts) and PHP (retry_test.php) tests.
    def test_the_same_code_and_message_as_the_typescript_and_php_clients_for_the_same_failure(self) -> None:
        def refused() -> str:
            srv = socket.socket()
            srv.bind(("127.0.0.1", 0))
            port = srv.getsockname()[1]
            srv.close()
            return f"http://127.0.0.1:{port}"

        def silent(conn: socket.socket) -> None:
            time.sleep(1.5)

        def closed(conn: socket.socket) -> None:
            pass

        def cut(conn: socket.socket) -> None:
            conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"entries":')

        def garbage(conn: socket.socket) -> None:
            conn.sendall(b"garbage\r\n\r\n")

        cases = [
            (lambda: serve_once(silent), 0.25, "TIMEOUT", "No answer within 0.25 s"),
            (lambda: serve_once(silent), 1.0, "TIMEOUT", "No answer within 1 s"),
            (refused, 2.0, "NETWORK_ERROR", "Request failed: could not connect to the server"),
            (lambda: UNRESOLVABLE, 2.0, "NETWORK_ERROR", "Request failed: could not resolve the host name"),
            (lambda: serve_once(closed), 2.0, "NETWORK_ERROR", "Request failed: the connection closed before the whole answer arrived"),
            (lambda: serve_once(cut), 2.0, "NETWORK_ERROR", "Request failed: the connection closed before the whole answer arrived"),
            (lambda: serve_once(garbage), 2.0, "NETWORK_ERROR", "Request failed: the answer is not valid HTTP"),
        ]
        for base, timeout, code, message in cases:
            err = failure(base(), timeout)
            self.assertEqual((err.status, err.code, err.message), (0, code, message))

    # The same statuses, code and message are in the TypeScript (transport.test.ts) and PHP (retry_test.php) tests.
    def test_a_redirect_is_not_followed_so_the_key_goes_nowhere_else(self) -> None:
        seen = []

        def elsewhere(conn: socket.socket) -> None:
            seen.append("asked")
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")

        target = serve_once(elsewhere)
        for status in (301, 302, 307, 308):

            def redirect(conn: socket.socket, status: int = status) -> None:
                conn.sendall(b"HTTP/1.1 %d Moved\r\nLocation: %s/steal\r\nX-Request-Id: req_moved\r\nContent-Length: 0\r\n\r\n" % (status, target.encode()))

            expected = (status, "REDIRECT", "Refused a redirect (the API never redirects: check the base URL)", "req_moved")
            err = failure(serve_once(redirect), 2.0)
            self.assertEqual((err.status, err.code, err.message, err.request_id), expected)
            try:
                Client("tp2_sk_test", serve_once(redirect), timeout=2.0, max_retries=2).send_feedback({"customer_id": "cus_1", "method_id": "visa"})
                self.fail("no Tap2Error")
            except Tap2Error as post_err:
                self.assertEqual((post_err.status, post_err.code, post_err.message, post_err.request_id), expected)
        time.sleep(0.2)
        self.assertEqual(seen, [])

if __name__ == "__main__":
    unittest.main()
