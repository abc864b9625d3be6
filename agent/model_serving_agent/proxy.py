"""The front: forwards a request to the model's current backend. The backend is picked and its
in-flight count raised before the first await, so a switch that happens later never sees a request
it does not count, and draining waits for exactly the requests the old backend accepted."""

import asyncio
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

if TYPE_CHECKING:
    from .routing import Picker

# Request headers that describe this hop only (RFC 9110 7.6.1) and are not forwarded.
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "host", "content-length",
               "x-model-variant"}  # fmt: skip
FORWARDED_PATHS = {"invocations", "ping", "health", "version"}


def json_error(status: int, message: str, **extra: object) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


async def forward(
    session: aiohttp.ClientSession, pick: "Picker", request: web.Request, path: str, name: str
) -> web.StreamResponse:
    if path not in FORWARDED_PATHS:
        return json_error(404, f"no such path /{path}; a model front serves /invocations and /ping")
    backend, variant = pick(request.headers)
    if isinstance(backend, int):
        return json_error(backend, variant)
    backend.begin_request()
    try:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        # One retry when the connection broke before any answer (a backend worker that died and is being
        # replaced by uvicorn, say). Scoring has no side effects, so resending is safe.
        for attempt in (1, 2):
            try:
                async with session.request(
                    request.method,
                    backend.url(backend.path_for(name, path)),
                    data=body,
                    headers=headers,
                    params=request.query,
                ) as resp:
                    payload = await resp.read()
                    out = {"X-Model-Uri": backend.uri_for(name), "X-Model-Variant": variant}
                    if "Content-Type" in resp.headers:
                        out["Content-Type"] = resp.headers["Content-Type"]
                    return web.Response(status=resp.status, body=payload, headers=out)
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as err:
                if attempt == 2:
                    return json_error(502, f"backend for {backend.model_uri} failed: {err!r}")
            except asyncio.TimeoutError:
                return json_error(504, f"backend for {backend.model_uri} did not answer in time")
        raise AssertionError("unreachable")
    finally:
        backend.end_request()
