"""The API docs render in a real headless Chromium that cannot reach any host but 127.0.0.1:
Swagger UI and ReDoc come from the package, not a CDN."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from outdial.api.app import create_app
from outdial.config import Settings
from outdial.store.repo import Store
from outdial.testing import FakeClock
from tests.console.test_browser import ARTIFACTS, CHROMEDRIVER, CHROMIUM, _need_browser, wait_for


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder: Path = tmp_path_factory.mktemp("docs")
    store = Store.open(f"sqlite:///{folder / 'docs.db'}")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    app = create_app(settings, store, FakeClock())
    sock = socket.create_server(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)
    store.close()


@pytest.fixture(scope="module")
def offline_browser() -> Iterator[Any]:
    _need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                # Every host name but loopback fails to resolve: a CDN asset could not load.
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_window_size(1280, 900)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def test_swagger_ui_lists_the_routes_offline(docs_server: str, offline_browser: Any) -> None:
    from selenium.webdriver.common.by import By

    offline_browser.get(f"{docs_server}/docs")
    wait_for(offline_browser, ".opblock", timeout=20)
    paths = [
        e.text for e in offline_browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
    ]
    assert any("/v3/voice/group/call/send/ai" in p for p in paths), paths[:5]
    offline_browser.save_screenshot(str(ARTIFACTS / "api-docs-swagger.png"))


def test_redoc_renders_offline(docs_server: str, offline_browser: Any) -> None:
    offline_browser.get(f"{docs_server}/redoc")
    # ReDoc renders each operation into a section with an id of its own.
    wait_for(offline_browser, "[data-section-id^='operation']", timeout=30)
    assert "send/ai" in offline_browser.page_source
    offline_browser.save_screenshot(str(ARTIFACTS / "api-docs-redoc.png"))
