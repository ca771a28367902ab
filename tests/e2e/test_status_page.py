"""The status page in a real browser (Debian's chromium driven by Playwright) against the dev
host: it loads without console errors or outside requests, shows a mailbox whose rounds fail as
failing with Graph's code, a healthy one as ok, and the run writes a screenshot."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest

from devhost.local.stack import FUNCTION_KEY, Stack
from tests.e2e.harness import at, enrol, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOT = Path(__file__).parents[2] / "test-artifacts" / "status-page.png"


def test_status_needs_the_function_key(stack: Stack) -> None:
    """GET /api/status without a key: 401, and no page."""
    with httpx.Client(verify=stack.sim.ssl_context()) as client:
        response = client.get(f"{stack.hosts[0].url}/api/status")
    assert response.status_code == 401
    assert "<table" not in response.text


@pytest.mark.skipif(
    not Path(CHROMIUM).exists() and os.environ.get("CI") != "true",
    reason="Debian's chromium is not installed (scripts/bootstrap installs it when run as root)",
)
def test_status_page_in_a_browser(stack: Stack) -> None:
    """A failing mailbox is shown failing with its code, the chart counts this hour's change;
    the page has no console error."""
    from playwright.sync_api import sync_playwright

    healthy, broken = enrol(stack), enrol(stack)
    stack.sim.control.fault(500, count=1000, path_contains=f"{broken.user_id}/calendarView")
    with stack.admin() as api:
        api.post(f"{broken.path}/resync").raise_for_status()
    wait_for(lambda: broken.status()["status"]["lastError"], what="the failing round")
    healthy.create({"subject": "Still fine", **at(1, 9)})
    healthy.converged()

    errors: list[str] = []
    outside: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(
                ignore_https_errors=True, viewport={"width": 1400, "height": 700}
            )
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on(
                "request",
                lambda r: (
                    outside.append(r.url) if not r.url.startswith(stack.hosts[0].url) else None
                ),
            )
            page.set_extra_http_headers({"x-functions-key": FUNCTION_KEY})
            response = page.goto(f"{stack.hosts[0].url}/api/status")
            assert response is not None
            assert response.status == 200
            row = page.locator("tr", has_text=broken.upn)
            assert row.get_attribute("data-state") == "failing"
            assert "InternalServerError" in row.inner_text()
            assert page.locator("tr", has_text=healthy.upn).get_attribute("data-state") == "ok"
            assert int(page.locator("#failing").inner_text()) >= 1
            bars = page.locator("#changes-chart rect")
            assert bars.count() == 24
            last_hour = bars.nth(23).locator("title").text_content() or ""
            assert int(last_hour.split(": ")[1].split()[0]) >= 1  # the change made above
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert outside == []
    assert SCREENSHOT.stat().st_size > 10_000
