"""The dev server's own listening sockets (`--workers N`): accepted connections get TCP_NODELAY
(uvicorn's bind for workers leaves it off, and every keep-alive response then waits about 40 ms
for the client's delayed ACK), and `--reuse-port` processes can share one port."""

from __future__ import annotations

import asyncio
import socket

import pytest

from infra import devserver


def accepted_nodelay(listener: socket.socket) -> int:
    """TCP_NODELAY of the connection an asyncio server on `listener` accepts."""

    async def main() -> int:
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(accepted, sock=listener)
        _, writer = await asyncio.open_connection(*listener.getsockname()[:2])
        try:
            return await asyncio.wait_for(seen, 5)
        finally:
            writer.close()
            server.close()
            await server.wait_closed()

    return asyncio.run(main())


@pytest.mark.parametrize("reuse_port", [False, True])
def test_accepted_connections_get_tcp_nodelay(reuse_port: bool) -> None:
    listener = devserver.listen_socket("127.0.0.1", 0, reuse_port=reuse_port)
    assert listener.proto == socket.IPPROTO_TCP
    assert accepted_nodelay(listener) != 0


def test_a_listener_without_the_tcp_proto_gives_connections_nagle() -> None:
    """Why listen_socket names the protocol: the same socket built as uvicorn builds it."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    assert accepted_nodelay(listener) == 0


def test_reuse_port_sockets_share_a_port() -> None:
    first = devserver.listen_socket("127.0.0.1", 0, reuse_port=True)
    first.listen()
    port = first.getsockname()[1]
    second = devserver.listen_socket("127.0.0.1", port, reuse_port=True)
    second.listen()
    assert second.getsockname()[1] == port
    with pytest.raises(OSError):
        devserver.listen_socket("127.0.0.1", port)
    first.close()
    second.close()
