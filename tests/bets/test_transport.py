"""The lean HTTP/1.1 transport under the SDK: keep-alive, a connection the server closed
while idle, chunked and read-to-close bodies, TLS, timeouts and broken answers, each
through the real ``openai`` SDK and a real socket on 127.0.0.1."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from modelpin.bets.limits import Lane
from modelpin.bets.transport import LeanTransport, proxy_configured
from modelpin.model.providers import Provider

COMPLETION = json.dumps({"id": "c", "object": "chat.completion", "created": 0, "model": "m",
                         "choices": [{"index": 0, "finish_reason": "stop", "message": {
                             "role": "assistant", "content": "hi"}}]}).encode()


class Origin:
    """A raw HTTP server whose answers each test writes by hand; counts connections."""

    def __init__(self) -> None:
        self.connections = 0
        self.dropped = 0
        self.requests: list[bytes] = []
        self.url = ""

    async def read_request(self, reader: asyncio.StreamReader) -> bool:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return False
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        self.requests.append(head + await reader.readexactly(length))
        return True


Handler = Callable[[Origin, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def serve(handler: Handler, tls: ssl.SSLContext | None = None
                ) -> tuple[Origin, asyncio.Server]:
    origin = Origin()

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        origin.connections += 1
        try:
            await handler(origin, reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(connection, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    origin.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}/v1"
    return origin, server


def sdk(url: str, transport: LeanTransport | None = None, timeout: float = 5
        ) -> openai.AsyncOpenAI:
    http = httpx.AsyncClient(transport=transport or LeanTransport(ssl.create_default_context()),
                             timeout=timeout)
    return openai.AsyncOpenAI(base_url=url, api_key="k", max_retries=0, timeout=timeout,
                              http_client=http)


async def ask(client: openai.AsyncOpenAI) -> dict[str, Any]:
    body = await client.post("/chat/completions", body={"model": "m", "messages": [
        {"role": "user", "content": "hello"}]}, cast_to=bytes)
    data: dict[str, Any] = json.loads(body)
    return data


def ok(extra: bytes = b"") -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n"
            % (len(COMPLETION), extra) + COMPLETION)


def test_calls_reuse_one_keep_alive_connection() -> None:
    async def keep_alive(origin: Origin, reader: asyncio.StreamReader,
            writer: asyncio.StreamWriter) -> None:
        while await origin.read_request(reader):
            writer.write(ok())

    async def main() -> None:
        origin, server = await serve(keep_alive)
        client = sdk(origin.url)
        for _ in range(5):
            assert (await ask(client))["choices"][0]["message"]["content"] == "hi"
        await client.close()
        server.close()
        assert origin.connections == 1 and len(origin.requests) == 5
        first = origin.requests[0].decode().lower()
        assert first.startswith("post /v1/chat/completions http/1.1\r\n")
        assert "\r\nauthorization: bearer k\r\n" in first
        assert '\r\ncontent-length: 60\r\n\r\n{"model":"m",' in first

    asyncio.run(main())


def test_a_connection_closed_while_idle_is_replaced_and_the_call_made_once() -> None:
    async def one_per_connection(origin: Origin, reader: asyncio.StreamReader,
            writer: asyncio.StreamWriter) -> None:
        if await origin.read_request(reader):
            writer.write(ok())  # no "Connection: close": the client thinks it may reuse it
            await writer.drain()

    async def main() -> None:
        origin, server = await serve(one_per_connection)
        client = sdk(origin.url)
        for _ in range(3):
            await ask(client)
            await asyncio.sleep(0.05)
        await client.close()
        server.close()
        assert len(origin.requests) == 3 and origin.connections == 3

    asyncio.run(main())


def test_a_close_racing_the_request_is_retried_on_a_new_connection() -> None:
    async def drop_second(origin: Origin, reader: asyncio.StreamReader,
            writer: asyncio.StreamWriter) -> None:
        if await origin.read_request(reader):
            writer.write(ok())
            await writer.drain()
        if origin.connections == 1:
            await reader.readuntil(b"\r\n\r\n")  # the reused connection's request: dropped
            origin.dropped += 1

    async def main() -> None:
        origin, server = await serve(drop_second)
        client = sdk(origin.url)
        await ask(client)
        await ask(client)
        await client.close()
        server.close()
        assert origin.dropped == 1 and len(origin.requests) == 2
        assert origin.connections == 2

    asyncio.run(main())


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    + b"%x\r\n%s\r\n" % (20, COMPLETION[:20]) + b"%x\r\n%s\r\n" % (
        len(COMPLETION) - 20, COMPLETION[20:]) + b"0\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + COMPLETION,  # to EOF
    b"HTTP/1.1 100 Continue\r\n\r\n" + ok(),
])
def test_chunked_read_to_close_and_interim_answers(answer: bytes) -> None:
    async def once(origin: Origin, reader: asyncio.StreamReader,
            writer: asyncio.StreamWriter) -> None:
        if await origin.read_request(reader):
            writer.write(answer)
            await writer.drain()

    async def main() -> None:
        origin, server = await serve(once)
        client = sdk(origin.url)
        assert (await ask(client))["choices"][0]["message"]["content"] == "hi"
        assert (await ask(client))["choices"][0]["message"]["content"] == "hi"
        await client.close()
        server.close()
        assert origin.connections == 2 and len(origin.requests) == 2

    asyncio.run(main())


def test_status_errors_keep_their_body_and_headers_for_the_sdk() -> None:
    error = json.dumps({"error": {"message": "slow down", "type": "requests", "param": None,
                                  "code": "rate_limit_exceeded"}}).encode()

    async def limited(origin: Origin, reader: asyncio.StreamReader,
            writer: asyncio.StreamWriter) -> None:
        while await origin.read_request(reader):
            writer.write(b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\n"
                         b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(error), error))

    async def main() -> None:
        origin, server = await serve(limited)
        client = sdk(origin.url)
        with pytest.raises(openai.RateLimitError) as info:
            await ask(client)
        assert info.value.code == "rate_limit_exceeded"
        assert info.value.response.headers["retry-after"] == "3"
        await client.close()
        server.close()

    asyncio.run(main())


@pytest.mark.parametrize(("answer", "error"), [
    (None, openai.APITimeoutError),  # never answers
    (b"garbage\r\n\r\n", openai.APIConnectionError),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{\"trunc", openai.APIConnectionError),
])
def test_timeouts_and_broken_answers_are_the_sdks_connection_errors(
        answer: bytes | None, error: type[Exception]) -> None:
    async def broken(origin: Origin, reader: asyncio.StreamReader,
            writer: asyncio.StreamWriter) -> None:
        if await origin.read_request(reader):
            if answer is None:
                await asyncio.sleep(2)
                return
            writer.write(answer)
            await writer.drain()

    async def main() -> None:
        origin, server = await serve(broken)
        client = sdk(origin.url, timeout=0.3)
        with pytest.raises(error):
            await ask(client)
        await client.close()
        server.close()

    asyncio.run(main())


def test_a_refused_connection_is_a_connection_error() -> None:
    async def main() -> None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        client = sdk(f"http://127.0.0.1:{port}/v1")
        with pytest.raises(openai.APIConnectionError):
            await ask(client)
        await client.close()

    asyncio.run(main())


def _self_signed(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


def test_https_is_verified_against_the_given_trust(tmp_path: Path) -> None:
    server_tls, client_tls = _self_signed(tmp_path)

    async def keep_alive(origin: Origin, reader: asyncio.StreamReader,
            writer: asyncio.StreamWriter) -> None:
        while await origin.read_request(reader):
            writer.write(ok())

    async def main() -> None:
        origin, server = await serve(keep_alive, server_tls)
        client = sdk(origin.url, LeanTransport(client_tls))
        assert (await ask(client))["choices"][0]["message"]["content"] == "hi"
        await client.close()
        untrusting = sdk(origin.url, LeanTransport(ssl.create_default_context()))
        with pytest.raises(openai.APIConnectionError):  # unknown issuer: refused
            await ask(untrusting)
        await untrusting.close()
        server.close()

    asyncio.run(main())


def test_a_proxy_variable_hands_the_lane_to_httpxs_own_transport() -> None:
    from modelpin.bets.client import ProviderClient

    assert proxy_configured({"HTTPS_PROXY": "http://proxy:3128"})
    assert proxy_configured({"all_proxy": "socks5://p"})
    assert not proxy_configured({"NO_PROXY": "*", "HTTPS_PROXY": ""})
    provider = Provider.model_validate({"base_url": "http://127.0.0.1:9/v1", "api_key_env": "K",
                                        "requests_per_minute": 60, "tokens_per_minute": 6000,
                                        "concurrency": 2})

    async def main() -> tuple[str, str]:
        proxied = ProviderClient(Lane("p", provider), "k", environ={"HTTPS_PROXY": "http://x"})
        direct = ProviderClient(Lane("p", provider), "k", environ={})
        names = proxied.transport_name, direct.transport_name
        await proxied.close()
        await direct.close()
        return names

    assert asyncio.run(main()) == ("httpx", "lean")
