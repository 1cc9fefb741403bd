"""aiohttp apps served in-process for tests: their own thread and event loop, free loopback ports."""
from __future__ import annotations

import asyncio
import threading
from typing import List, Optional, Tuple


class BackgroundServer:
    """Subclasses return the (app, port) pairs to serve from ``build()``; start() waits until they listen."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: Optional[BaseException] = None
        self._runners: list = []
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def build(self) -> List[Tuple[object, int]]:
        raise NotImplementedError

    async def _serve(self) -> None:
        from aiohttp import web

        for app, port in self.build():
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            self._runners.append(runner)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as exc:  # surfaced by start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()

    def start(self):
        self._thread.start()
        self._ready.wait(30)
        if self._error:
            raise self._error
        return self

    def stop(self) -> None:
        async def shutdown() -> None:
            for runner in reversed(self._runners):
                await runner.cleanup()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(15)
