"""The dashboard in a real browser: Debian's headless Chromium driven by Selenium through
Debian's chromedriver (`apt-get install chromium chromium-driver`; `make test-deps` does it).
One server and one browser for the module. Screenshots go to the test's temporary folder (CI
keeps it as an artifact), and to $MOODCAM_SCREENSHOT when set (`make web-screenshot`: the
README's picture)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dashboard import LAST_MOOD, Served, serve
from tests.servers import wait_until

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("web-browser")) as s:
        yield s


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: apt-get install chromium chromium-driver "
                    "(make test-deps)")  # fmt: skip
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1200,900", "--hide-scrollbars"):  # fmt: skip
        options.add_argument(arg)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium's sandbox refuses to run as root
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def errors(driver: Any) -> list[dict[str, Any]]:
    """Console messages of level SEVERE (errors, CSP violations, failed loads) since last asked."""
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def text(driver: Any, css: str) -> str:
    # In one call: a live event may replace the element between a find and a read.
    return driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.textContent.trim() : ''", css
    ).lower()


def screenshot(driver: Any, out: Path, width: int) -> Path:
    """The whole page at `width` CSS pixels."""
    driver.set_window_size(width, 900)
    for _ in range(3):  # the window's height is not the page's: grow it by what is missing
        missing = driver.execute_script(
            "return document.documentElement.scrollHeight - window.innerHeight"
        )
        if missing <= 0:
            break
        driver.set_window_size(width, driver.get_window_size()["height"] + missing)
    driver.save_screenshot(str(out))
    return out


def test_the_page_shows_the_log_live_and_draws_its_charts(browser: Any, server: Served,
                                                          tmp_path: Path) -> None:  # fmt: skip
    browser.set_window_size(1200, 900)
    browser.get(f"http://127.0.0.1:{server.port}/")
    wait_until(lambda: text(browser, "#live") == "live", 20, "the live stream to connect")
    assert text(browser, "#now .mood") == LAST_MOOD
    wait_until(lambda: "ok" in text(browser, "#doctor").lower() or "fail" in
               text(browser, "#doctor").lower(), 60, "the device checks")  # fmt: skip
    assert errors(browser) == []
    # Charts: today's timeline has mood stretches; 7 and 30 days their bars and hour curves.
    sizes = browser.execute_script(  # in one go: a live event replaces some charts
        "return [...document.querySelectorAll('svg.chart')]"
        ".map(e => [e.getBoundingClientRect().width, e.getBoundingClientRect().height])"
    )
    assert len(sizes) >= 6
    assert len(browser.find_elements("css selector", "#today-svg rect[fill]")) > 2
    assert len(browser.find_elements("css selector", "#week rect[fill]")) >= 3
    assert len(browser.find_elements("css selector", "#month polyline")) == 2
    assert len(browser.find_elements("css selector", "#framing-svg rect.face")) == 1
    assert all(w > 100 and h > 20 for w, h in sizes), sizes  # laid out, not collapsed
    # A mood change written to the log reaches the open page without a reload.
    browser.execute_script("document.body.dataset.marker = 'same page'")
    server.append("angry")
    wait_until(lambda: text(browser, "#now .mood") == "angry", 10, "the live mood change")
    assert browser.execute_script("return document.body.dataset.marker") == "same page"
    assert errors(browser) == []
    shot = screenshot(browser, tmp_path / "dashboard.png", 1000)
    assert shot.stat().st_size > 20_000
    if os.environ.get("MOODCAM_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["MOODCAM_SCREENSHOT"])


def test_the_page_fits_a_phone(browser: Any, server: Served, tmp_path: Path) -> None:
    browser.set_window_size(390, 844)
    browser.get(f"http://127.0.0.1:{server.port}/?from=2026-01-01&to=2026-01-31")
    wait_until(lambda: text(browser, "#live") == "live", 20, "the live stream to connect")
    overflow = browser.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{overflow} px wider than a phone"
    assert browser.find_element("css selector", "#range svg.chart").size["width"] <= 390
    assert errors(browser) == []
    screenshot(browser, tmp_path / "dashboard-phone.png", 390)
