"""The pooled connections keep their socket, and still notice when the server closed one."""

from __future__ import annotations

import asyncio
import socket

import httpx

from assetbuild.providers.see2ai import See2AIClient
from assetbuild.providers.sockets import keep_sockets_at_hand, socket_is_readable

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


def test_an_idle_socket_is_readable_once_its_peer_has_closed() -> None:
    ours, theirs = socket.socketpair()
    with ours:
        assert not socket_is_readable(ours)
        theirs.close()
        assert socket_is_readable(ours)
    assert socket_is_readable(ours), "a closed socket counts as readable (never reused)"
    assert socket_is_readable(None)


def test_only_httpx_own_pool_is_changed() -> None:
    assert not keep_sockets_at_hand(httpx.MockTransport(lambda request: httpx.Response(200)))
    transport = httpx.AsyncHTTPTransport()
    assert keep_sockets_at_hand(transport)
    assert keep_sockets_at_hand(transport), "applied once, twice is harmless"


def test_a_connection_the_server_closed_is_not_reused() -> None:
    """A server that answers one request per connection, then hangs up while the client
    keeps the connection in its pool: every request must still get its answer, each on
    a new connection. If the pool could not tell the closed socket, the second request
    would be sent down it and fail."""
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(RESPONSE)  # keep-alive by default in HTTP/1.1, and then closed
        await writer.drain()
        writer.close()

    async def scenario() -> list[str]:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = See2AIClient(api_key="sk-test", base_url=f"http://127.0.0.1:{port}")
        answers = []
        try:
            for _ in range(3):
                response = await client._http.get(f"http://127.0.0.1:{port}/")
                answers.append(response.text)
                await asyncio.sleep(0.05)  # the server hangs up meanwhile
        finally:
            await client.aclose()
            server.close()
        return answers

    assert asyncio.run(scenario()) == ["ok", "ok", "ok"]
    assert connections == 3


def test_over_tls_a_live_connection_is_kept_and_reused() -> None:
    """The real API is HTTPS: the socket is kept through the TLS upgrade, and an idle
    connection the server keeps open is not taken for closed (three requests, one
    connection). A server that hangs up is seen through TLS no better than by httpx's
    own pool: that request fails as a connection closed before any answer, which the
    client resends (tests/test_see2ai.py, drops)."""
    import ssl

    import trustme

    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(RESPONSE)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def scenario() -> list[str]:
        server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_context)
        port = server.sockets[0].getsockname()[1]
        async with httpx.AsyncClient(verify=client_context) as client:
            assert keep_sockets_at_hand(client._transport)
            answers = []
            for _ in range(3):
                answers.append((await client.get(f"https://127.0.0.1:{port}/")).text)
                await asyncio.sleep(0.05)
        server.close()
        await server.wait_closed()
        return answers

    assert asyncio.run(scenario()) == ["ok", "ok", "ok"]
    assert connections == 1
