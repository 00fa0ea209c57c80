"""The sentences of a take in the browser, on a laptop and a phone: every sentence shows its
check, one sentence is made again with a chosen seed, then the earlier take is chosen back; the
rest of the take is untouched and no "Error" badge is left. Speech comes from the espeak-ng
backend, so the checks really pass.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

import pytest
import soundfile as sf

from tests.support.browser import chromium, error_badges, expect, new_page, open_tab, screenshot, toast
from tests.support.espeak_backend import EspeakBackend
from tests.support.studio import serve_app
from voicebox.config import Settings
from voicebox.quality import QualityGate
from voicebox.records import GenerationRequest
from voicebox.services import Studio

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TEXT = (
    "The lighthouse keeper climbed the narrow stairs every evening, trimmed the wick, polished the "
    "great lens and lit the lamp just before the sun went down behind the hills. "
    "Because of his patient work, the fishing boats and the cargo ships passed safely through the "
    "rocky channel all winter long, even on the darkest and stormiest nights."
)


@pytest.fixture(scope="module", params=["desktop", "phone"])
def viewport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def app(
    viewport: str, tmp_path_factory: pytest.TempPathFactory, shared_asr: Any, speaker_encoder: Any, espeak_wav: Path
) -> Iterator[tuple[str, Studio]]:
    settings = Settings(data_dir=tmp_path_factory.mktemp(f"sentences-{viewport}") / "data", quality="check")
    studio = Studio(settings, tts=EspeakBackend(), asr=shared_asr, quality_gate=QualityGate(shared_asr, speaker=speaker_encoder))
    profile = studio.create_profile("Keeper", language="English")
    studio.add_sample(profile.id, espeak_wav, "The quick brown fox jumps over the lazy dog near the river bank.")
    studio.generate(GenerationRequest(profile.id, TEXT, seed=11))
    for url in serve_app(settings, studio):
        yield url, studio


def test_one_sentence_made_again_then_the_first_take_chosen_back(app: tuple[str, Studio], viewport: str) -> None:
    check = expect()
    url, studio = app
    take = studio.list_history(limit=1)["items"][0]
    before = sf.read(str(studio.generation_path(take.id)), dtype="int16")[0]
    with chromium() as browser:
        page = new_page(browser, url, viewport)
        open_tab(page, "History")
        page.locator("#history-table").get_by_text("lighthouse keeper").locator("visible=true").first.click()
        info = page.locator("#history-info")
        check(info.locator(".vb-badge-passed")).to_have_count(2)  # each sentence shows its check
        check(page.locator("#sentence-editor")).to_be_visible()
        page.locator("#sentence-pick input").click()
        page.get_by_role("option", name="2. Because of his patient").click()
        check(page.locator("#sentence-words textarea")).to_have_value(take.chunks[1].text)
        page.locator("#sentence-seed input, #sentence-seed textarea").first.fill("42")
        page.locator("#sentence-retake").click()
        check(toast(page, "info", "Sentence 2: take 2 is in use")).to_be_visible()
        check(page.locator("#sentence-takes input")).to_have_value(re.compile(r"^Take 2 · .* · seed 42 \(in use\)$"))
        check(info).to_contain_text("take 2 of 2")
        check(error_badges(page)).to_have_count(0)
        screenshot(page, f"sentences-retake-{viewport}")
        record = studio.get_generation(take.id)
        assert record.chunks[1].used_take == 1 and record.chunks[0] == take.chunks[0]

        page.locator("#sentence-takes input").click()
        page.get_by_role("option", name="Take 1 ·").click()
        check(toast(page, "info", "Sentence 2 now uses take 1")).to_be_visible()
        check(info).to_contain_text("take 1 of 2")
        check(error_badges(page)).to_have_count(0)
        screenshot(page, f"sentences-restored-{viewport}")
        page.context.close()
    after = sf.read(str(studio.generation_path(take.id)), dtype="int16")[0]
    assert after.shape == before.shape and (after == before).all()  # the first version, byte for byte


def test_the_generate_tab_opens_the_sentences_of_the_take_it_made(app: tuple[str, Studio], viewport: str) -> None:
    check = expect()
    url, studio = app
    with chromium() as browser:
        page = new_page(browser, url, viewport)
        open_tab(page, "Generate")
        check(page.locator("#gen-sentence-editor")).to_be_hidden()  # nothing made yet
        page.locator("#gen-profile input").click()
        page.get_by_role("option", name="Keeper").click()
        page.locator("#gen-text textarea").fill("The keeper wrote the names of three ships in his log.")
        page.locator("#gen-button").click()
        check(page.locator("#gen-status")).to_contain_text("Saved to History")
        check(page.locator("#gen-sentence-editor")).to_be_visible()
        check(page.locator("#gen-details .vb-badge-passed")).to_have_count(1)
        page.locator("#gen-sentence-seed input, #gen-sentence-seed textarea").first.fill("7")
        page.locator("#gen-sentence-retake").click()
        check(page.locator("#gen-sentence-takes input")).to_have_value(re.compile(r"^Take 2 · .* · seed 7 \(in use\)$"))
        check(page.locator("#gen-details")).to_contain_text("take 2 of 2")
        check(error_badges(page)).to_have_count(0)
        screenshot(page, f"sentences-generate-{viewport}")
        page.context.close()
    latest = studio.list_history(limit=1)["items"][0]
    assert latest.chunks[0].used_take == 1 and latest.chunks[0].seed == 7
