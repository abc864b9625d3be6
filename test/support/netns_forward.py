"""Loopback port forwarder of the netns test host (test/support/netnsHost.ts).

    python3 netns_forward.py <netns file> <port>...

Listens on 127.0.0.1:<port> of the namespace it starts in (the deploying side's), then joins the
network namespace <netns file> (/run/netns/<name>) and forwards each accepted connection to
127.0.0.1:<port> there: a port the host serves on is the port the test reaches, as Docker publishes it.
One process per host, no process per connection. Prints "ready" once every port listens; a connection
to a port nothing listens on inside is accepted and closed (what docker-proxy does too).
"""

import asyncio
import ctypes
import os
import socket
import sys

CLONE_NEWNET = 0x40000000


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


async def forward(port: int, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
    try:
        inner_r, inner_w = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        client_w.close()
        return
    await asyncio.gather(pipe(client_r, inner_w), pipe(inner_r, client_w))
    for w in (client_w, inner_w):
        w.close()


async def main(netns: str, ports: list[int]) -> None:
    listeners = []
    for port in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(128)
        s.setblocking(False)
        listeners.append((port, s))
    # Every socket made from here on (the connections into the host) is in the host's namespace.
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(netns, os.O_RDONLY)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns {netns}: {os.strerror(err)}")
    os.close(fd)
    servers = []
    for port, s in listeners:
        handler = lambda r, w, port=port: forward(port, r, w)  # noqa: E731
        servers.append(await asyncio.start_server(handler, sock=s))
    print("ready", flush=True)
    await asyncio.gather(*(srv.serve_forever() for srv in servers))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], [int(p) for p in sys.argv[2:]]))
