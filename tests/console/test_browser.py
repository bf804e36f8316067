"""The console in a real headless Chromium (Debian's chromium driven by its chromedriver, so
nothing is downloaded): sign in, overview, campaign, pause and resume with confirmation, CSV,
calls, a call's transcript and recording, and an account user refused another account's data.
Each page is captured at desktop and phone width in test-artifacts/console/."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient

from outdial.api.app import create_app
from outdial.config import Settings
from outdial.console.app import install
from outdial.store.repo import Store
from outdial.testing import FakeClock
from tests.conftest import REQUIRE_ALL
from tests.console.seed import PASSWORD, Seeded, add_calls, seed

# Overridable so that a test can show a missing browser fails the run in CI.
CHROMIUM = os.environ.get("OUTDIAL_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("OUTDIAL_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"
SIZES = {"desktop": (1280, 900), "phone": (390, 844)}


def _need_browser() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if shutil.which(p) is None]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip)")
    if missing:
        message = f"browser tests need {', '.join(missing)} (.ci/run installs them)"
        # In CI a missing browser is a failure, never a skip.
        if REQUIRE_ALL:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, Seeded, Store, FakeClock]]:
    folder = tmp_path_factory.mktemp("console")
    store = Store.open(f"sqlite:///{folder / 'console.db'}")
    clock = FakeClock()
    settings = Settings(_env_file=None, recordings_dir=str(folder / "rec"))  # type: ignore[call-arg]
    app = create_app(settings, store, clock)
    install(app, settings, store, clock)
    with TestClient(app) as client:
        data = seed(client, store, clock, folder / "rec", "web")
    sock = socket.create_server(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", data, store, clock
    srv.should_exit = True
    thread.join(10)
    store.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--autoplay-policy=no-user-gesture-required", "--mute-audio"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_window_size(*SIZES["desktop"])
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def shoot(driver: Any, name: str, scroll_to: str | None = None) -> None:
    """Capture the page at both widths (then back to desktop), scrolled to ``scroll_to``."""
    for label, (w, h) in SIZES.items():
        driver.set_window_size(w, h)
        time.sleep(0.4)  # let the layout settle and the chart redraw at the new width
        if scroll_to:
            driver.execute_script(
                "document.querySelector(arguments[0]).scrollIntoView()", scroll_to
            )
            time.sleep(0.1)
        driver.save_screenshot(str(ARTIFACTS / f"{name}-{label}.png"))
    driver.set_window_size(*SIZES["desktop"])


def wait_for(driver: Any, css: str, timeout: float = 10) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, css))
    )


def sign_in(driver: Any, base: str, username: str) -> None:
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()
    driver.get(f"{base}/console/login")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(driver, "header.top")


def test_operator_walks_through_the_console(browser: Any, server: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    base, data, store, clock = server
    d = browser
    d.get(f"{base}/console/login")
    wait_for(d, "#username")
    shoot(d, "login")
    d.find_element(By.ID, "username").send_keys(data.user)
    d.find_element(By.ID, "password").send_keys("not the password")
    d.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    assert "wrong username or password" in wait_for(d, ".alert").text

    sign_in(d, base, data.user)
    assert d.find_element(By.ID, "stat-tasks").text == "1"
    # The chart library drew into its canvas.
    wait_for(d, "#chart canvas")
    shoot(d, "overview")

    d.find_element(By.LINK_TEXT, "Campaigns").click()
    link = wait_for(d, f'a[href="/console/campaigns/{data.task_id}"]')
    shoot(d, "campaigns")
    link.click()
    assert "calling" in wait_for(d, "#status").text
    funnel = d.find_element(By.ID, "funnel").text
    assert "Dialed" in funnel and "Answered" in funnel
    # The template funnel: every node in the template's order, who ended calls where.
    nodes = d.find_elements(By.CSS_SELECTOR, "#template-funnel li.node")
    assert [n.get_attribute("data-node") for n in nodes][:3] == ["remind", "identify", "confirmed"]
    assert "ended here: bot 3" in nodes[2].text
    wait_for(d, "#rate-chart canvas")
    shoot(d, "campaign")
    shoot(d, "campaign-template-funnel", "#template-funnel")
    shoot(d, "campaign-answer-rate", "#rate-chart")
    # The open page follows the campaign: three more calls finish, the page polls (5 s).
    assert d.find_element(By.ID, "progress").text == "75%"
    add_calls(store, clock, data.acme, data.task_id, 3, None)
    WebDriverWait(d, 15).until(lambda drv: drv.find_element(By.ID, "progress").text == "100%")

    d.find_element(By.ID, "action-pause").click()
    confirm = wait_for(d, "#confirm")
    shoot(d, "confirm-pause")
    confirm.click()
    assert wait_for(d, "#done").text == "Campaign paused."
    assert d.find_element(By.ID, "status").text == "paused"
    d.find_element(By.ID, "action-resume").click()
    wait_for(d, "#confirm").click()
    assert wait_for(d, "#done").text == "Campaign resumed."

    # Cancel, then call again the callees not connected: a child campaign, listed.
    d.find_element(By.ID, "action-cancel").click()
    wait_for(d, "#confirm").click()
    assert wait_for(d, "#done").text == "Campaign cancelled."
    d.find_element(By.ID, "action-resend-not-connected").click()
    confirm = wait_for(d, "#confirm")
    assert "not connected" in d.find_element(By.TAG_NAME, "h1").text + confirm.text
    shoot(d, "confirm-resend")
    confirm.click()
    made = wait_for(d, "#made")
    assert made.text.endswith(" resend 1")
    child_row = d.find_element(By.CSS_SELECTOR, "#children tbody tr")
    assert made.text in child_row.text and "resend" in child_row.text
    shoot(d, "campaign-resent")
    shoot(d, "campaign-children", "#children")

    csv_text = d.execute_async_script(
        "const done = arguments[0];"
        "fetch(document.getElementById('export-csv').href).then(r => r.text()).then(done);"
    )
    assert csv_text.splitlines()[0].startswith("voiceId,taskId")
    assert len(csv_text.strip().splitlines()) == 1 + len(data.call_ids) + 3

    d.find_element(By.LINK_TEXT, "Calls").click()
    wait_for(d, "#calls")
    shoot(d, "calls")
    d.find_element(By.CSS_SELECTOR, f'a[href="/console/calls/{data.recorded_call}"]').click()
    chat = wait_for(d, "#chat")
    assert "yes thanks" in chat.text and "Bot" in chat.text
    duration = d.execute_async_script(
        "const done = arguments[0]; const a = document.getElementById('player');"
        "if (a.readyState >= 1) { done(a.duration); }"
        "else { a.addEventListener('loadedmetadata', () => done(a.duration)); a.load(); }"
    )
    assert duration > 0
    # A transcript time seeks the player.
    d.find_elements(By.CSS_SELECTOR, "button.seek")[1].click()
    position = d.execute_script("return document.getElementById('player').currentTime")
    assert position >= 0.8
    shoot(d, "call")


def test_an_account_user_is_refused_another_accounts_pages(browser: Any, server: Any) -> None:
    from selenium.webdriver.common.by import By

    base, data, _, _ = server
    d = browser
    sign_in(d, base, data.user)
    for url in (f"/console/campaigns/{data.other_task_id}", f"/console/calls/{data.other_call}"):
        d.get(base + url)
        assert "does not exist" in wait_for(d, ".alert").text
    shoot(d, "not-found")
    d.find_element(By.CSS_SELECTOR, ".signout button").click()
    wait_for(d, "#username")
    d.get(f"{base}/console/")
    assert "/console/login" in d.current_url
