"""python -m model_serving_agent --config agent.json [--token-stdin]

The API listens first (so /health can say "starting"), then the models of the state file are brought
back on their front ports, then /health answers ok. SIGTERM/SIGINT close the fronts; backends keep
running for the next start to adopt unless the config says stop_backends_on_exit."""

import argparse
import asyncio
import logging
import logging.handlers
import os
import signal
import sys

import aiohttp
from aiohttp import web

from .api import create_app
from .auth import TokenError, read_token_file, read_token_stdin
from .config import AgentConfig, ConfigError, load_config
from .manager import Manager
from .state import StateError

log = logging.getLogger("model_serving_agent")


def setup_logging(log_dir: str) -> None:
    os.makedirs(log_dir, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        os.path.join(log_dir, "agent.log"), maxBytes=10 * 1024 * 1024, backupCount=3
    )
    stderr = logging.StreamHandler(sys.stderr)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    for h in (handler, stderr):
        h.setFormatter(fmt)
        log.addHandler(h)
    log.setLevel(logging.INFO)


async def serve(config: AgentConfig, token: str) -> None:
    # One connection per forwarded request (force_close): a backend's uvicorn workers share one listening
    # socket, and the kernel hands a new connection to a worker waiting in accept(), i.e. an idle one.
    # Pooled keep-alive connections stay pinned to whichever worker accepted them first, so one worker
    # did most of the work (0.95x a bare server at concurrency 8; 1.76x with this, 2 cores). Backends are
    # on loopback, where Linux reuses TIME_WAIT ports for new connections (tcp_tw_reuse=2, the default),
    # so the request rate is not bounded by the ephemeral port range.
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
        manager = Manager(config=config, session=session)
        runner = web.AppRunner(create_app(manager, token), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, config.host, config.port, reuse_address=True).start()
        log.info("agent API on %s:%d; bringing back the recorded models", config.host, config.port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        adoption = asyncio.create_task(manager.adopt())
        await asyncio.wait([adoption, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
        if adoption.done():
            adoption.result()  # a state file that cannot be read stops the agent here
            log.info("ready: %s", manager.health())
            supervisor = asyncio.create_task(manager.supervise())
            await stop.wait()
            supervisor.cancel()
        log.info("stopping")
        await runner.cleanup()
        await manager.shutdown()


def main(argv: "list[str] | None" = None) -> int:
    parser = argparse.ArgumentParser(prog="model_serving_agent", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the agent's JSON config file")
    parser.add_argument("--token-stdin", action="store_true", help="read the API token from stdin's first line")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        if args.token_stdin:
            token = read_token_stdin(sys.stdin)
        elif config.token_file:
            token = read_token_file(config.token_file)
        else:
            raise TokenError("no token: set token_file in the config or pass --token-stdin")
    except (ConfigError, TokenError) as err:
        print(f"model_serving_agent: {err}", file=sys.stderr)
        return 2
    setup_logging(config.log_dir)
    try:
        asyncio.run(serve(config, token))
    except StateError as err:
        log.error("%s", err)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
