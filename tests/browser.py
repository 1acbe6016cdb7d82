"""Headless Chromium for UI tests: Playwright's Python driver plus the distribution's chromium.

Why not Playwright's own browser: ``playwright install`` downloads from a CDN that CI and dev
machines cannot reach. The wheel bundles the driver; Debian's ``chromium`` (.ci/install-browser.sh)
is the browser. Not a test module: test files import it (``from browser import ...``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM_ENV = "GBREG_CHROMIUM"  # explicit executable, for machines where it lives elsewhere
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",  # root in containers; the sandbox needs user namespaces
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # no internet here: no update/safe-browsing calls
    "--disable-component-update",
    "--disable-sync",
)
INSTALL_HINT = "run .ci/install-browser.sh and `pip install playwright` (never `playwright install`)"


def find_chromium() -> str | None:
    """The Chromium executable: $GBREG_CHROMIUM, /usr/bin/chromium, or chromium on PATH."""
    explicit = os.environ.get(CHROMIUM_ENV)
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for candidate in CHROMIUM_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("chromium") or shutil.which("chromium-browser")


def browser_unavailable_reason() -> str | None:
    """Why a browser test cannot run here, or None when Chromium and Playwright are both present."""
    missing = []
    chromium = find_chromium()
    if chromium is None:
        where = os.environ.get(CHROMIUM_ENV) or " or ".join(CHROMIUM_CANDIDATES)
        missing.append(f"no Chromium executable ({where})")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("Playwright for Python is not installed")
    if not missing:
        return None
    return "; ".join(missing) + f"; {INSTALL_HINT}"


def running_in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def require_browser() -> None:
    """Skip the calling test without a browser, except in CI (CI=true), where that is a failure."""
    import pytest

    reason = browser_unavailable_reason()
    if reason is None:
        return
    if running_in_ci():
        pytest.fail(f"CI=true but the browser test cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


@contextmanager
def launch_chromium(*, headless: bool = True) -> Iterator[Browser]:
    """A Playwright Browser on the system Chromium, closed (with its driver) on exit.

    ``launch()`` gives every call a fresh temporary user-data-dir, so no profile state leaks
    between tests (Playwright refuses ``--user-data-dir`` in args for exactly that reason).
    """
    from playwright.sync_api import sync_playwright

    chromium = find_chromium()
    if chromium is None:
        raise RuntimeError(browser_unavailable_reason() or "no Chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=headless, args=list(CHROMIUM_ARGS))
        try:
            yield browser
        finally:
            browser.close()


def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


def ci_artifacts_dir() -> Path:
    """``ci-artifacts/`` at the repository root, where CI picks up screenshots."""
    folder = repo_root() / "ci-artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
