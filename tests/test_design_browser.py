"""Designing a voice in the browser: a refusal that changes nothing, takes to compare, one kept as
a profile that opens in the editor — at 1280×900 and 390×844, on the real (tiny, random)
VoiceDesign and Base checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.support.browser import (
    chromium, close_toasts, error_badges, expect, field, new_page, screenshot, toast,
)
from tests.support.qwen_checkpoint import build_random_checkpoint
from tests.support.studio import serve_app, studio_settings
from voicebox.services import Studio

pytestmark = [pytest.mark.browser]
DESCRIPTION = "A bright young voice, quick and cheerful."


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path, whisper_tiny_path: str,
        shared_tts: Any, shared_asr: Any) -> Iterator[tuple[str, Studio]]:
    design = build_random_checkpoint(tmp_path_factory.mktemp("qwen") / "design-ui", "tiny", seed=6,
                                     variant="voice_design")
    settings = studio_settings(tmp_path_factory.mktemp("design-ui") / "data", tiny_checkpoint, whisper_tiny_path,
                               max_frames=16, design_model=str(design), quotas="off", rate_limit="off")
    studio = Studio(settings, tts=shared_tts, asr=shared_asr)
    for url in serve_app(settings, studio):
        yield url, studio


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_design_compare_and_keep_a_take(app: tuple[str, Studio], viewport: str) -> None:
    url, studio = app
    check = expect()
    with chromium() as browser:
        page = new_page(browser, url, viewport)
        page.locator("#design-box").get_by_text("Design a voice from words").click()
        page.locator("#design-run").click()  # nothing described yet
        check(toast(page, "warning", "Describe the voice in words first")).to_be_visible()
        check(page.locator("#design-take-1")).to_be_hidden()
        check(error_badges(page)).to_have_count(0)
        close_toasts(page)

        field(page, "design-description").fill(DESCRIPTION)
        page.locator("#design-takes").get_by_text("2", exact=True).click()
        page.locator("#design-run").click()
        for n in (1, 2):
            check(page.locator(f"#design-take-{n}")).to_be_visible()
        check(page.locator("#design-take-3")).to_be_hidden()
        check(page.locator("#design-status")).to_contain_text("2 takes ready. Listen, pick one")
        page.locator("#design-pick").get_by_text("Take 2").click()
        name = f"Designed {viewport}"
        field(page, "design-name").fill(name)
        screenshot(page, f"design-{viewport}")
        page.locator("#design-save").click()
        check(page.locator("#profile-list")).to_contain_text(f"{name} · 1 sample")
        check(field(page, "profile-name")).to_have_value(name)  # opened in the editor above
        check(field(page, "profile-description")).to_have_value(DESCRIPTION)
        check(page.locator("#design-status")).to_contain_text(f"Saved as the profile {name}")
        check(error_badges(page)).to_have_count(0)
    profile = studio.find_profile(name)
    assert profile.description == DESCRIPTION and studio.get_profile(profile.id).sample_count == 1
