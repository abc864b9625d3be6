"""A stand-in model server for the drain test: /ping answers at once, /invocations after DELAY seconds;
SIGTERM kills it at once (no graceful shutdown of its own), as it does `mlflow models serve`'s CLI process.
Usage: python slow_backend.py PORT DELAY"""

import asyncio
import sys

from aiohttp import web


async def ping(request: web.Request) -> web.Response:
    return web.Response(text="\n")


async def invocations(request: web.Request) -> web.Response:
    await asyncio.sleep(float(sys.argv[2]))
    return web.json_response({"predictions": [0]})


app = web.Application()
app.router.add_get("/ping", ping)
app.router.add_post("/invocations", invocations)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, handle_signals=False)
