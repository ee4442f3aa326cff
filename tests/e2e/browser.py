"""The browser the page tests drive: Debian's Chromium through Playwright, never a downloaded browser.

Screenshots of every page a test visits go to ``build/screenshots/`` (``GUARD_SCREENSHOTS`` moves them).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("GUARD_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("GUARD_SCREENSHOTS", Path(__file__).resolve().parents[2] / "build" / "screenshots"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail(f"{CHROMIUM} is missing: install the Debian packages chromium and chromium-driver (./dev test does)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield launched
        launched.close()


def serve_for_pages(tmp_path_factory: pytest.TempPathFactory, name: str) -> Any:
    """A ``guard serve`` for one module of page tests (quiet hours off, so a check's answer is the page's doing)."""
    from tests.e2e.conftest import ServeProcess
    from tests.helpers import QUIET_HOURS_OFF, policy_file

    tmp = tmp_path_factory.mktemp(name)
    proc = ServeProcess(tmp / "data", {"GUARD_POLICY": str(policy_file(tmp, quiet_hours=QUIET_HOURS_OFF))})
    proc.start()
    return proc


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
