"""Playwright on Debian's Chromium, shared by the browser tests: launch, viewports, and what a
person sees (tabs, toasts, "Error" badges, screenshots under ``tests/artifacts/``)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]
SLOW = 90_000  # ms: model loads and Whisper on a shared 2-core machine
#: The sizes every journey is walked at: a laptop and a phone (iPhone 12-15 class, portrait).
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


def expect() -> Any:  # imported lazily so collection works without playwright
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


class _Shared:
    """The one Chromium that a module's browser tests share (see :func:`chromium`)."""

    playwright: Any = None
    browser: Any = None
    holders = 0  # open ``with chromium()`` blocks


def _launch() -> Any:
    if _Shared.browser is None or not _Shared.browser.is_connected():
        from playwright.sync_api import sync_playwright

        close_shared_chromium()
        _Shared.playwright = sync_playwright().start()
        _Shared.browser = _Shared.playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    return _Shared.browser


def close_shared_chromium() -> None:
    """Close the shared Chromium and stop Playwright, unless a ``with chromium()`` block still holds
    it. ``tests/conftest.py`` calls this after a module's last browser test (and before any test
    that is not one), so that no Playwright event loop is left marked running on the main thread
    while other tests run."""
    if _Shared.holders:
        return
    browser, playwright = _Shared.browser, _Shared.playwright
    _Shared.browser = _Shared.playwright = None
    try:
        if browser is not None and browser.is_connected():
            browser.close()
    finally:
        if playwright is not None:
            playwright.stop()


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (Debian's, never a downloaded one); what the block opened in it (its
    contexts and their pages) is closed afterwards.

    The Chromium process itself is shared: launching one costs about a second, and a module's
    browser tests (``browser``-marked, run one after another) all use the same one, at both
    viewports. Each test still works in browser contexts of its own (:func:`new_page`), which
    share no cookies, storage or cache with any other.
    """
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    expect().set_options(timeout=SLOW)  # expect() has its own 5 s default
    ARTIFACTS.mkdir(exist_ok=True)
    browser = _launch()
    before = list(browser.contexts)
    _Shared.holders += 1
    try:
        yield browser
    finally:
        _Shared.holders -= 1
        if browser.is_connected():
            for context in browser.contexts:
                if not any(context is kept for kept in before):
                    context.close()


def new_page(browser: Any, url: str, viewport: str = "desktop") -> Any:
    """A fresh browser context (its own Gradio session) with the app open, microphone allowed."""
    context = browser.new_context(viewport=VIEWPORTS[viewport], accept_downloads=True)
    context.grant_permissions(["microphone"])
    page = context.new_page()
    page.set_default_timeout(SLOW)
    page.goto(url)
    expect()(page.locator(".vb-header h1")).to_have_text("voicebox")
    return page


def open_tab(page: Any, name: str) -> None:
    tab = page.get_by_role("tab", name=name, exact=True)
    tab.click()  # all five tabs are visible at every size (no overflow menu)
    expect()(tab).to_have_attribute("aria-selected", "true")


def screenshot(page: Any, name: str) -> Path:
    """Save the page for people to look at, without toasts covering it."""
    page.mouse.move(0, 0)  # no hover colours in the picture
    path = ARTIFACTS / f"ui-{name}.png"
    page.screenshot(path=str(path), full_page=True, animations="disabled",  # fades finished
                    style=".toast-wrap { display: none !important; }")
    return path


def group(page: Any, elem_id: str) -> Any:
    """A gr.Group or panel by elem_id (Gradio may render the id on an outer and an inner div)."""
    return page.locator(f"#{elem_id}").first


def toast(page: Any, kind: str, text: str) -> Any:
    """A toast of ``kind`` (error, warning, info, success) that contains ``text``."""
    return page.locator(f'[data-testid="toast-body"].{kind}').filter(has_text=text)


def close_toasts(page: Any) -> None:
    """Close every toast, as a person would before reading the page.

    Always the first close button still there: closing one shifts the others' positions (and a
    toast may time out on its own meanwhile), so a button found by position can vanish."""
    buttons = page.locator('[data-testid="toast-close"]:visible')
    for _ in range(20):
        if buttons.count() == 0:
            return
        try:
            buttons.first.click(timeout=2000)
        except Exception:  # noqa: BLE001 - it closed itself between the count and the click
            continue


def error_badges(page: Any) -> Any:
    """The red "Error" badges Gradio leaves on an event's outputs when its handler raises; the
    toasts live outside ``.contain``, so they do not count."""
    return page.locator(".contain .error").filter(has_text="Error")


def field(page: Any, elem_id: str) -> Any:
    """The text input of a Textbox/Number (Gradio renders an input or a textarea)."""
    return page.locator(f"#{elem_id} input, #{elem_id} textarea").first


def open_accordion(page: Any, label: str) -> None:
    """Open the accordion called ``label`` and let what it reveals settle: Gradio mounts an
    accordion's contents when it first opens and sets their starting values again a moment later,
    moving the page as it does, so a click or typing in that moment can miss (see
    :func:`fill_revealed`)."""
    page.get_by_text(label, exact=True).click()
    page.wait_for_timeout(300)  # not a check: the contents' second render comes within ~100 ms


def fill_revealed(box: Any, value: str) -> None:
    """Type ``value`` into a box that has just been revealed (an accordion opened a moment ago).

    Gradio sets such a box's starting value once more just after it first appears, without an
    input event: text typed within those few milliseconds (a script types that fast, a person
    does not) is wiped and the form sends the box empty. Seen as a seed typed into Advanced and a
    take made with a random one, 3 times in 16 quick runs. So type, let the page settle, and
    type again until the text stays.
    """
    for _ in range(5):
        box.fill(value)
        box.page.wait_for_timeout(250)  # the reset comes within ~100 ms of the box appearing
        if box.input_value() == value:
            return
    expect()(box).to_have_value(value)
