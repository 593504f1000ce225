"""The delivery worker's HTTP client against real sockets on loopback: a server of our
own per test that answers as the test says (keep-alive, closes, oversized and malformed
answers, silence, TLS)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from receiver.feed.client import MAX_ANSWER_BYTES, Answer, PostFailed, SubscriberClient

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

OK = b"HTTP/1.1 204 No Content\r\n\r\n"


class Requests:
    """What the server received: each request's head, and the connections."""

    def __init__(self) -> None:
        self.heads: list[bytes] = []
        self.bodies: list[bytes] = []
        self.connections = 0


async def read_request(reader: asyncio.StreamReader, seen: Requests) -> bool:
    """One request off the connection (False at its end)."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return False
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    seen.heads.append(head)
    seen.bodies.append(await reader.readexactly(length))
    return True


def answering(seen: Requests, *answers: bytes, close: bool = False) -> Handler:
    """Answer each request of a connection with the next of ``answers`` (the last
    repeats); ``close``: then close the connection."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.connections += 1
        count = 0
        while await read_request(reader, seen):
            writer.write(answers[min(count, len(answers) - 1)])
            await writer.drain()
            count += 1
            if close:
                break
        writer.close()

    return handle


@asynccontextmanager
async def serving(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    """A loopback server; its base URL. At the end, its connections are closed and their
    handlers awaited."""
    handling: list[tuple[asyncio.Task[None], asyncio.StreamWriter]] = []

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handling.append((task, writer))
        await handler(reader, writer)

    server = await asyncio.start_server(tracked, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        server.close()
        for task, writer in handling:
            writer.close()
            task.cancel()
        await asyncio.gather(*(task for task, _ in handling), return_exceptions=True)
        for _, writer in handling:
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()
        await server.wait_closed()


async def post_once(answer: bytes, seen: Requests | None = None) -> Answer:
    """One POST to a server that answers it with ``answer`` and closes the connection."""
    async with serving(answering(seen or Requests(), answer, close=True)) as url:
        client = SubscriberClient(url, timeout_seconds=5)
        try:
            return await client.post({}, b"{}")
        finally:
            client.close()


async def test_posts_go_over_one_kept_connection_with_our_headers_and_body() -> None:
    seen = Requests()
    async with serving(answering(seen, OK)) as url:
        client = SubscriberClient(f"{url}/hooks/sms?tenant=7", timeout_seconds=5)
        for number in range(3):
            answer = await client.post({"webhook-id": f"chg_{number}"}, b'{"n": %d}' % number)
            assert answer == Answer(204, None)
        client.close()
    assert seen.connections == 1
    assert seen.bodies == [b'{"n": 0}', b'{"n": 1}', b'{"n": 2}']
    first = seen.heads[0].decode()
    assert first.startswith("POST /hooks/sms?tenant=7 HTTP/1.1\r\n")
    assert f"Host: {url.removeprefix('http://')}\r\n" in first
    assert "webhook-id: chg_0\r\n" in first
    assert "Content-Length: 8\r\n" in first


async def test_the_status_and_retry_after_of_any_answer() -> None:
    busy = b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: 4\r\n\r\nbusy"
    assert await post_once(busy) == Answer(429, "7")


async def test_a_connection_the_subscriber_closed_is_not_used_again() -> None:
    seen = Requests()
    async with serving(answering(seen, OK, close=True)) as url:
        client = SubscriberClient(url, timeout_seconds=5)
        for _ in range(3):
            assert (await client.post({}, b"{}")).status == 204
            await asyncio.sleep(0.05)  # the close reaches us
        client.close()
    assert seen.connections == 3


async def test_a_kept_connection_closed_as_the_request_went_out_is_tried_once_more() -> None:
    """The subscriber reads the second request and closes without a word (as a server
    whose keep-alive ran out at that moment may): the client sends it again on a new
    connection, where it is answered."""
    seen = Requests()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if seen.connections:
            await answering(seen, OK)(reader, writer)
            return
        seen.connections += 1
        await read_request(reader, seen)
        writer.write(OK)
        await writer.drain()
        await read_request(reader, seen)  # and no answer
        writer.close()

    async with serving(handle) as url:
        client = SubscriberClient(url, timeout_seconds=5)
        assert (await client.post({}, b"1")).status == 204
        assert (await client.post({}, b"2")).status == 204
        client.close()
    assert seen.bodies == [b"1", b"2", b"2"]
    assert seen.connections == 2


async def test_a_lost_connection_with_part_of_an_answer_fails_the_post() -> None:
    seen = Requests()
    with pytest.raises(PostFailed, match="connection lost"):
        await post_once(b"HTTP/1.1 200 OK\r\nContent-Le", seen)
    assert seen.connections == 1  # not sent again: the subscriber had begun to answer


async def test_an_answer_delimited_by_the_close_counts() -> None:
    answer = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nthanks"
    assert await post_once(answer) == Answer(200, None)


async def test_a_long_answer_is_read_only_as_far_as_the_limit() -> None:
    seen = Requests()
    size = 4 * MAX_ANSWER_BYTES
    long = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + b"x" * size
    async with serving(answering(seen, long)) as url:
        client = SubscriberClient(url, timeout_seconds=5)
        assert (await client.post({}, b"1")).status == 200
        assert (await client.post({}, b"2")).status == 200
        client.close()
    assert seen.connections == 2  # the first was closed, not read to its end


async def test_what_is_not_http_fails_the_post() -> None:
    with pytest.raises(PostFailed, match="not an HTTP answer"):
        await post_once(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")


async def test_a_refused_connection_fails_the_post() -> None:
    async with serving(answering(Requests(), OK)) as url:
        pass  # closed: nothing listens on its port now
    client = SubscriberClient(url, timeout_seconds=5)
    with pytest.raises(PostFailed, match="cannot connect"):
        await client.post({}, b"{}")


async def test_a_silent_subscriber_times_out_and_its_connection_is_dropped() -> None:
    seen = Requests()
    released = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.connections += 1
        await read_request(reader, seen)
        await released.wait()
        writer.close()

    async with serving(silent) as url:
        client = SubscriberClient(url, timeout_seconds=0.2)
        with pytest.raises(TimeoutError):
            await client.post({}, b"{}")
        with pytest.raises(TimeoutError):
            await client.post({}, b"{}")
        released.set()
        client.close()
    assert seen.connections == 2


async def test_user_and_password_in_the_url_are_basic_authentication() -> None:
    seen = Requests()
    async with serving(answering(seen, OK)) as url:
        client = SubscriberClient(url.replace("://", "://orders:s%40cret@"), timeout_seconds=5)
        await client.post({}, b"{}")
        client.close()
    head = seen.heads[0].decode()
    assert "Authorization: Basic b3JkZXJzOnNAY3JldA==\r\n" in head  # orders:s@cret
    assert "Host: 127.0.0.1:" in head


def self_signed(directory: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context for 127.0.0.1 and the certificate to trust it by."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "subscriber.test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context, cert_file


async def test_https_checks_the_subscriber_s_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tls, certificate = self_signed(tmp_path)
    seen = Requests()
    async with serving(answering(seen, OK), tls) as url:
        untrusting = SubscriberClient(url, timeout_seconds=5)
        with pytest.raises(PostFailed, match="CERTIFICATE_VERIFY_FAILED"):
            await untrusting.post({}, b"{}")
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate))  # the system's CAs, for a test
        trusting = SubscriberClient(url, timeout_seconds=5)
        assert (await trusting.post({}, b"secret")).status == 204
        trusting.close()
    assert seen.bodies == [b"secret"]


def test_a_url_must_be_http_or_https() -> None:
    with pytest.raises(ValueError, match="http or https"):
        SubscriberClient("ftp://127.0.0.1/changes", timeout_seconds=5)
