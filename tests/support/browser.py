"""Headless Chromium for the browser tests: Debian's `chromium` package (`./dev install`
installs it when missing), driven by Playwright's Python client over its own protocol.
Playwright's browser download is never used: the launch names Debian's binary."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHROMIUM_ENV = "AUTOMEM_TEST_CHROMIUM"
# This machine's network is closed: without these, Chromium's background connections are
# refused many at a time and every start tries to reach Google's hosts.
CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests run as root in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_path() -> str:
    """The Chromium binary, or an error saying how to get one (never a skip)."""
    path = os.environ.get(CHROMIUM_ENV) or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).is_file():
        raise RuntimeError(
            f"no Chromium at {path}: `./dev install` installs Debian's chromium package "
            f"(as root), or set {CHROMIUM_ENV} to a Chromium binary"
        )
    return path


@contextmanager
def browser_page(timeout_ms: int = 60_000) -> Iterator:
    """A fresh page in a fresh headless Chromium (Playwright gives it an empty profile)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True
        )
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(timeout_ms)
            yield page
        finally:
            browser.close()
