"""Anonymous libraries (VOICEBOX_ANONYMOUS): one per browser, private, erased after days unused.

The expiry test makes a whole library (a voice with a sample, a take) the way a visitor would and
checks that a sweep after the inactivity period leaves nothing of it on disk; the browser test
opens two browsers against one server and checks that each sees only its own library, also after
a reload, and that the REST API (which cannot tell browsers apart) asks for an account.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.support.browser import (
    chromium, close_toasts, error_badges, expect, field, new_page, open_tab, screenshot,
)
from tests.support.espeak_backend import EspeakBackend
from tests.support.studio import serve_app
from voicebox.anonymous import DAY, TOUCH_EVERY, AnonymousLibraries
from voicebox.config import Settings
from voicebox.identity import anonymous_owner
from voicebox.owners import root
from voicebox.records import GenerationRequest
from voicebox.services import Studio

WORDS = "The quick brown fox jumps over the lazy dog near the river bank."


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def library_of(studio: Studio, owner: str, wav: Path) -> Path:
    """A voice with a sample and one take for ``owner``; returns the owner's folder."""
    voice = studio.create_profile("My voice", language="English", owner=owner, consent="2026-12-01T10:00:00Z")
    studio.add_sample(voice.id, wav, WORDS, owner=owner)
    studio.generate(GenerationRequest(voice.id, "A line to keep."), owner=owner)
    return root(studio.settings.data_dir, owner)


def test_an_unused_library_is_erased_and_a_visited_one_kept(tmp_path: Path, espeak_wav: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", quality="off", anonymous=True, anonymous_days=30)
    studio = Studio(settings, tts=EspeakBackend())
    clock = Clock()
    libraries = AnonymousLibraries(studio, settings.anonymous_days, clock)
    gone, kept = anonymous_owner("G" * 43), anonymous_owner("K" * 43)
    gone_folder, kept_folder = library_of(studio, gone, espeak_wav), library_of(studio, kept, espeak_wav)
    assert any(gone_folder.rglob("*.wav")) and any(kept_folder.rglob("*.wav"))
    libraries.seen(gone)
    libraries.seen(kept)
    assert libraries.last_seen(gone) == clock.now

    clock.now += 20 * DAY
    libraries.seen(kept)  # kept comes back after 20 days
    libraries.seen(kept)  # a second click within the hour writes nothing new
    assert libraries.last_seen(kept) == clock.now
    clock.now += TOUCH_EVERY / 2
    libraries.seen(kept)
    assert libraries.last_seen(kept) == clock.now - TOUCH_EVERY / 2
    assert libraries.sweep() == []  # nobody has been away 30 days yet

    clock.now += 11 * DAY  # gone: 31 days away; kept: 11
    swept = libraries.sweep()
    assert [(e.owner, e.erased) for e in swept] == [(gone, True)]
    assert studio.list_profiles(owner=gone)["total"] == 0 and studio.list_history(owner=gone)["total"] == 0
    assert not gone_folder.exists()  # its samples, takes, everything
    assert libraries.last_seen(gone) is None
    assert studio.list_profiles(owner=kept)["total"] == 1 and any(kept_folder.rglob("*.wav"))


def test_a_library_in_use_waits_for_the_next_sweep(tmp_path: Path, espeak_wav: Path, monkeypatch: Any) -> None:
    settings = Settings(data_dir=tmp_path / "data", quality="off", anonymous=True, anonymous_days=1)
    studio = Studio(settings, tts=EspeakBackend())
    clock = Clock()
    libraries = AnonymousLibraries(studio, 1, clock)
    owner = anonymous_owner("R" * 43)
    folder = library_of(studio, owner, espeak_wav)
    libraries.seen(owner)
    clock.now += 2 * DAY
    monkeypatch.setattr(studio.exports, "running_for", lambda who: who == owner)  # an export is being written
    assert [(e.owner, e.erased) for e in libraries.sweep()] == [(owner, False)]
    assert any(folder.rglob("*.wav")) and libraries.last_seen(owner) is not None
    monkeypatch.undo()
    assert [(e.owner, e.erased) for e in libraries.sweep()] == [(owner, True)]
    assert not folder.exists()


@pytest.fixture(scope="module")
def anonymous_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Studio]]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("anonymous") / "data", quality="off", quotas="off",
                        rate_limit="off", anonymous=True, anonymous_days=14)
    studio = Studio(settings, tts=EspeakBackend())
    for url in serve_app(settings, studio):
        yield url, studio


@pytest.mark.browser
def test_two_browsers_get_two_private_libraries(anonymous_app: tuple[str, Studio]) -> None:
    url, studio = anonymous_app
    check = expect()
    with chromium() as browser:
        first, second = new_page(browser, url), new_page(browser, url, "phone")
        for page in (first, second):
            check(page.locator("#vb-who")).to_contain_text(
                "Your library is private to this browser. It is erased after 14 days without a visit")
            check(page.locator("#profile-empty")).to_contain_text("No profiles yet")
        field(first, "profile-name").fill("First's voice")
        first.locator("#profile-consent input[type=checkbox]").check()  # strangers share this server
        first.locator("#profile-create").click()
        check(first.locator("#profile-list")).to_contain_text("First's voice")
        close_toasts(first)

        second.reload()
        check(second.locator("#vb-who")).to_contain_text("private to this browser")
        check(second.locator("#profile-empty")).to_contain_text("No profiles yet")
        check(second.get_by_text("First's voice")).to_have_count(0)
        open_tab(second, "Generate")
        check(second.locator("#gen-profile input")).not_to_have_value("First's voice")
        screenshot(second, "anonymous-other-browser-phone")

        first.reload()  # the cookie keeps the same library across visits
        check(first.locator("#profile-list")).to_contain_text("First's voice")
        screenshot(first, "anonymous-desktop")
        for page in (first, second):
            check(error_badges(page)).to_have_count(0)

        # the REST API cannot tell browsers apart: without an account it lets nobody in
        assert first.context.request.get(f"{url}profiles").status == 401
    owners = {p["owner"] for p in studio.store.profiles.all()}
    assert len(owners) == 1 and next(iter(owners)).startswith("anon:")
