"""Effects in the browser, on a laptop and a phone: open a take in History, pick a preset, preview
it, apply it (the take's player then plays the processed audio), try a value that is refused (a
toast, no "Error" badge, the take unchanged), and remove the effect (the player plays the clean
take, byte for byte). Speech comes from the espeak-ng backend.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import chromium, error_badges, expect, new_page, open_tab, screenshot, toast
from tests.support.espeak_backend import EspeakBackend
from tests.support.studio import serve_app
from voicebox import take_effects
from voicebox.config import Settings
from voicebox.effects import PRESETS
from voicebox.records import GenerationRequest
from voicebox.services import Studio

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WORDS = "The quick brown fox jumps over the lazy dog near the river bank."


class NoWhisper:
    def status(self) -> dict[str, Any]:
        return {"loaded": False}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, espeak_wav: Path) -> Iterator[tuple[str, Studio]]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("effects-ui") / "data", quality="off")
    studio = Studio(settings, tts=EspeakBackend(), asr=NoWhisper())
    profile = studio.create_profile("Keeper", language="English")
    studio.add_sample(profile.id, espeak_wav, WORDS)
    for viewport in ("desktop", "phone"):
        studio.generate(GenerationRequest(profile.id, f"The keeper lit the lamp on the {viewport}.", seed=3))
    for url in serve_app(settings, studio):
        yield url, studio


def player_file(page: Any, player: str, before: str = "") -> str:
    """The URL of the file a player plays (its download link), once it is not ``before``."""
    link = page.locator(f"#{player} a[href*='/gradio_api/file=']").first
    expect()(link).to_have_attribute("href", re.compile(".+"))
    if before:
        expect()(link).not_to_have_attribute("href", before)
    return str(link.get_attribute("href"))


def fetched(page: Any, url: str) -> bytes:
    return bytes(page.request.get(url).body())


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_preview_apply_refuse_and_remove_an_effect(app: tuple[str, Studio], viewport: str) -> None:
    check = expect()
    url, studio = app
    take = next(r for r in studio.list_history()["items"] if viewport in r.text)
    clean = studio.take_file(take).read_bytes()
    with chromium() as browser:
        page = new_page(browser, url, viewport)
        open_tab(page, "History")
        page.locator("#history-table").get_by_text(f"on the {viewport}").locator("visible=true").first.click()
        panel = page.locator("#history-fx-panel").first
        check(panel).to_be_visible()
        first = player_file(page, "history-player")
        check(page.locator("#history-fx-status")).to_contain_text("No effect on this take")

        panel.get_by_text("Telephone", exact=True).click()
        page.locator("#history-fx-custom").get_by_text("Custom settings").click()
        low_cut = page.locator("#history-fx-low-cut-hz input[type=number]")
        check(low_cut).to_have_value("400")  # a preset shows its settings
        page.locator("#history-fx-preview").click()
        check(page.locator("#history-fx-status")).to_contain_text("Previewing Telephone")
        check(page.locator("#history-fx-preview-player audio").first).to_be_attached()
        assert studio.get_generation(take.id).effects is None  # a preview stores nothing

        page.locator("#history-fx-apply").click()
        check(toast(page, "info", "The take now plays with Telephone")).to_be_visible()
        check(page.locator("#history-fx-status")).to_contain_text("Effect on this take: Telephone")
        check(page.locator("#history-info .vb-fact").filter(has_text="Effect")).to_contain_text("Telephone")
        record = studio.get_generation(take.id)
        assert record.effects == PRESETS["telephone"]
        processed = take_effects.played_file(studio, record).read_bytes()
        check(error_badges(page)).to_have_count(0)
        applied = player_file(page, "history-player", before=first)
        assert fetched(page, applied) == processed != clean
        screenshot(page, f"effects-{viewport}")

        low_cut.fill("10")
        low_cut.press("Enter")
        check(panel.get_by_label("Custom", exact=True)).to_be_checked()
        page.locator("#history-fx-apply").click()
        check(toast(page, "warning", "Low cut (low_cut_hz) must be 0 (off) or from 20 to 4000 Hz")).to_be_visible()
        check(error_badges(page)).to_have_count(0)
        check(low_cut).to_have_value("10")  # the controls stay as the person left them
        check(page.locator("#history-fx-status")).to_contain_text("Effect on this take: Telephone")
        assert studio.get_generation(take.id).effects == PRESETS["telephone"]
        screenshot(page, f"effects-refused-{viewport}")

        page.locator("#history-fx-remove").click()
        check(toast(page, "info", "The effect was removed")).to_be_visible()
        check(page.locator("#history-fx-status")).to_contain_text("No effect on this take")
        check(panel.get_by_label("None", exact=True)).to_be_checked()
        check(page.locator("#history-info .vb-fact").filter(has_text="Effect")).to_have_count(0)
        assert studio.get_generation(take.id).effects is None
        assert fetched(page, player_file(page, "history-player", before=applied)) == clean  # byte for byte
        check(error_badges(page)).to_have_count(0)
        page.context.close()
