#!/usr/bin/env python3
"""A TCP proxy for tests: forwards 127.0.0.1:<free port> to HOST:PORT and prints its port on stdout.

Used to cut a connection without closing it: `kill -STOP <pid>` freezes the proxy, so no byte flows either way
and no FIN or RST reaches either side (as in a network partition); `kill -CONT <pid>` lets it flow again.
Usage: tcp-proxy.py HOST PORT
"""
import asyncio
import sys


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def main(host, port):
    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection(host, port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
