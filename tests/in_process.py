"""The app of one config run inside the test process, for route-level tests that need no
socket: the app's lifespan (store, writer, workers; ``app.router.lifespan_context``) runs
on an event loop in a thread for as long as the server is started, and requests reach the
app through ``httpx.ASGITransport`` on that loop. Clients are plain synchronous
``httpx.Client``s, as against a real server. The real ``receiver serve`` stays for the
end to end, crash and browser tests (tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any, Self

import httpx
from conftest import write_config
from starlette.applications import Starlette

from receiver.app import create_app
from receiver.cli import main
from receiver.config import load
from receiver.testing import SignedRequest
from receiver.testing.pytest_plugin import ReceiverServer

BASE_URL = "http://testserver"


class _AppThread(httpx.BaseTransport):
    """An event loop in a thread that runs ``app``'s lifespan until ``close``, and a
    synchronous transport that hands each request to the app on that loop."""

    def __init__(self, app: Starlette) -> None:
        self._app = app
        self._asgi = httpx.ASGITransport(app=app)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._stop = asyncio.Event()
        started: Future[None] = Future()
        self._lifespan = asyncio.run_coroutine_threadsafe(self._run(started), self._loop)
        started.result()

    async def _run(self, started: Future[None]) -> None:
        try:
            async with self._app.router.lifespan_context(self._app):
                started.set_result(None)
                await self._stop.wait()
        except BaseException as exc:
            if not started.done():
                started.set_exception(exc)
            raise

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def answer() -> httpx.Response:
            response = await self._asgi.handle_async_request(request)
            body = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=body)

        return asyncio.run_coroutine_threadsafe(answer(), self._loop).result()

    def close(self) -> None:
        """End the lifespan (the store drains and closes) and the loop."""
        self._loop.call_soon_threadsafe(self._stop.set)
        try:
            self._lifespan.result()
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()


class _Borrowed(httpx.BaseTransport):
    """Another client's transport, left open when this client closes."""

    def __init__(self, transport: httpx.BaseTransport) -> None:
        self._transport = transport

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._transport.handle_request(request)


class InProcessServer(ReceiverServer):
    """``ReceiverServer``'s interface (``post``, ``api``, ``staff_token``, ``secret``,
    ``db_path``) with the app in this process; ``client`` for any other request."""

    client: httpx.Client

    @property
    def base_url(self) -> str:
        return BASE_URL

    def start(self, attempts: int = 1, *, port: int | None = None) -> Self:
        self._app = _AppThread(create_app(load(self.config_path)))
        self.client = httpx.Client(transport=_Borrowed(self._app), base_url=BASE_URL)
        return self

    def stop(self, *args: Any, **kwargs: Any) -> None:
        self.client.close()
        self._app.close()

    def staff_token(self, name: str, role: str = "viewer") -> str:
        """A new token from ``receiver staff add NAME --role ROLE``, run in this process."""
        printed = io.StringIO()
        with redirect_stdout(printed):
            status = main(["staff", "add", name, "--role", role, "--config", str(self.config_path)])
        assert status == 0, f"receiver staff add exited {status}"
        return printed.getvalue().strip()

    def post(self, request: SignedRequest, **kwargs: Any) -> httpx.Response:
        return self.client.request(
            request.method, request.path, content=request.body, headers=request.headers, **kwargs
        )

    def api(self, token: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.Client(transport=_Borrowed(self._app), base_url=BASE_URL, headers=headers)


@contextmanager
def in_process_server(
    workdir: Path,
    settings: dict[str, Any] | None = None,
    providers: dict[str, dict[str, Any]] | None = None,
) -> Iterator[InProcessServer]:
    """A started in-process server with a fresh config and store in ``workdir``."""
    server = InProcessServer(workdir, write_config(workdir, settings, providers)).start()
    try:
        yield server
    finally:
        server.stop()
