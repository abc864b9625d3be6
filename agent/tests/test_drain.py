"""Draining, against a stand-in backend whose scoring takes a second: the switch away from it must let
a request already in flight finish (200) before the backend is stopped, and stop it right after."""

import asyncio
import os
import subprocess
import sys
import time

import aiohttp
from aiohttp import web

from model_serving_agent.backends import Backend, process_serves, wait_ready
from model_serving_agent.config import parse_config
from model_serving_agent.manager import Manager, ServedModel

from .support import free_port

SLOW_BACKEND = os.path.join(os.path.dirname(__file__), "slow_backend.py")
DELAY = 1.0


def test_switch_drains_the_in_flight_request_then_stops_the_old_backend(tmp_path):
    port = free_port(range(16200, 16210))
    proc = subprocess.Popen([sys.executable, SLOW_BACKEND, str(port), str(DELAY), "--port", str(port), "serve"],
                            start_new_session=True)  # fmt: skip
    try:
        asyncio.run(_scenario(tmp_path, port, proc.pid))
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


async def _scenario(tmp_path, port: int, pid: int) -> None:
    config = parse_config({"port": 16211, "state_file": str(tmp_path / "s.json"), "log_dir": str(tmp_path / "logs")})
    async with aiohttp.ClientSession() as session:
        deadline = time.monotonic() + 10
        while not process_serves(pid, port) and time.monotonic() < deadline:  # until the exec happened
            await asyncio.sleep(0.05)
        old = Backend(model_uri="models:/m/1", port=port, pid=pid, log_path=str(tmp_path / "b.log"))
        await wait_ready(old, session, 30)
        manager = Manager(config=config, session=session)
        manager.models["m"] = ServedModel(name="m", front_port=0, model_uri=old.model_uri, sample_input=None, backend=old)

        # A request through the front (the proxy), in flight on the old backend.
        from model_serving_agent.proxy import forward

        class FakeRequest:
            method, headers, query = "POST", {"Content-Type": "application/json"}, {}

            async def read(self) -> bytes:
                return b"{}"

        in_flight = asyncio.create_task(forward(session, manager.picker("m"), FakeRequest(), "invocations", "m"))  # type: ignore[arg-type]
        await asyncio.sleep(0.2)
        assert old.inflight == 1

        # The switch: the model moves on (no backend here), the old one drains.
        manager.models["m"].backend = None
        started = time.monotonic()
        await manager._drain_and_stop(old)
        response = await in_flight
        assert isinstance(response, web.Response) and response.status == 200, response
        assert time.monotonic() - started >= DELAY - 0.3  # it waited for the request
        assert not process_serves(pid, port)  # and stopped the backend after it
