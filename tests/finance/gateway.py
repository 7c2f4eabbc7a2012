"""The fake payment gateway as a REAL local HTTP server (uvicorn in a thread) for the finance tests."""

from __future__ import annotations

import threading
import time

import uvicorn

from services.finance.fake_gateway import FakeGateway
from shared.infra import free_port


class GatewayServer:
    def __init__(self) -> None:
        self.gw = FakeGateway()
        self.port = free_port()
        config = uvicorn.Config(
            self.gw.app(),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="fake-gateway", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> GatewayServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake gateway did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)
