"""The UI as a user drives it: Debian's Chromium via Playwright against the real app.

One server and one page per module; the tests run in order and build on each other like a
session at the studio: create a profile, upload jfk.flac and see Whisper's transcript, record a
sample with Chromium's fake microphone, generate speech, find it in History, download it, reuse
its settings, delete it, and be told why a bad upload was not added. Each tab is saved as a
screenshot under ``tests/artifacts/`` (ignored by git) for people to look at.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.support.browser import (
    chromium, error_badges, expect, field, fill_revealed, group, new_page, open_accordion, open_tab, screenshot,
    toast,
)
from tests.support.studio import serve_app, studio_settings
from voicebox.services import Studio

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def app_url(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_checkpoint: Path,
    whisper_tiny_path: str,
    shared_tts: Any,
    shared_asr: Any,
) -> Iterator[str]:
    settings = studio_settings(
        tmp_path_factory.mktemp("ui-browser") / "data", tiny_checkpoint, whisper_tiny_path
    )
    yield from serve_app(settings, Studio(settings, tts=shared_tts, asr=shared_asr))


@pytest.fixture(scope="module")
def page(app_url: str) -> Iterator[Any]:
    with chromium() as browser:
        page = new_page(browser, app_url, "desktop")
        yield page
        page.context.close()


def test_title_explains_and_empty_state_invites(page: "Page") -> None:  # noqa: F821
    check = expect()
    check(page.locator(".vb-header h1")).to_have_text("voicebox")
    check(page.locator(".vb-header")).to_contain_text("Clone a voice from a few seconds of audio")
    check(page.locator("#profile-empty")).to_contain_text("No profiles yet — create one to start")
    assert [t.strip() for t in page.get_by_role("tab").all_inner_texts()] == [
        "Profiles",
        "Generate",
        "History",
        "Projects",
        "Batch",
        "Transcribe",
        "Models",
    ]


def test_create_profile_upload_and_record(page: "Page", jfk_path: Path) -> None:  # noqa: F821
    check = expect()
    page.locator("#profile-name input, #profile-name textarea").first.fill("Kennedy")
    page.locator("#profile-description textarea, #profile-description input").first.fill("Inaugural address")
    page.locator("#profile-create").click()
    check(page.locator("#profile-heading")).to_contain_text("Kennedy")
    check(page.locator("#profile-list")).to_contain_text("Kennedy · 0 samples")
    check(page.locator("#samples-empty")).to_contain_text("No samples yet")

    page.locator("#sample-upload input[type=file]").set_input_files(str(jfk_path))
    transcript = page.locator("#sample-1 textarea").first
    check(transcript).to_have_value(re.compile(r"fellow Americans.*ask not", re.I))
    check(group(page, "sample-1")).to_contain_text(re.compile(r"Sample 1 · 1\d\.\d s"))
    check(page.locator("#profile-list")).to_contain_text("Kennedy · 1 sample")

    mic = page.locator("#sample-mic")
    mic.get_by_role("button", name="Record", exact=True).click()
    check(mic.get_by_role("button", name="Stop")).to_be_visible()
    page.wait_for_timeout(3000)  # the length of the recording, not a check
    mic.get_by_role("button", name="Stop").click()  # stopping adds the take
    check(group(page, "sample-2")).to_be_visible()
    check(page.locator("#profile-list")).to_contain_text("Kennedy · 2 samples")
    check(page.locator("#sample-1 textarea").first).to_have_value(re.compile("fellow Americans", re.I))
    screenshot(page, "profiles")


def test_bad_upload_says_why_and_adds_nothing(page: "Page", tmp_path: Path) -> None:  # noqa: F821
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"this is not a sound file" * 40)
    page.locator("#sample-upload input[type=file]").set_input_files(str(bad))
    expect()(page.locator("#sample-status")).to_contain_text("No sample was added")
    expect()(error_badges(page)).to_have_count(0)
    error = toast(page, "warning", "broken.wav")
    expect()(error).to_be_visible()
    expect()(error).to_contain_text("Could not read this file as audio")
    expect()(page.locator("#profile-list")).to_contain_text("Kennedy · 2 samples")  # nothing was added
    expect()(page.locator("#sample-3")).to_have_count(0)


def test_generate_plays_and_shows_the_take(page: "Page") -> None:  # noqa: F821
    check = expect()
    open_tab(page, "Generate")
    check(page.locator("#gen-profile input")).to_have_value("Kennedy")
    text = page.locator("#gen-text textarea")
    text.fill("Ask what you can do for your country.")
    check(page.locator("#gen-count")).to_contain_text("37 / 5,000 characters")
    open_accordion(page, "Advanced")
    fill_revealed(field(page, "gen-seed"), "4242")
    page.locator("#gen-button").click()
    check(page.locator("#gen-status")).to_contain_text("Saved to History")
    check(page.locator("#gen-details")).to_contain_text("4242")
    check(page.locator("#gen-details")).to_contain_text(re.compile(r"Voice\s*built now"))
    check(page.locator("#gen-result audio, #gen-result [data-testid=waveform-x]").first).to_be_attached()
    check(page.locator("#gen-button")).to_be_visible()
    check(page.locator("#gen-cancel")).to_be_hidden()
    screenshot(page, "generate")


def test_history_find_download_reuse_delete(page: "Page") -> None:  # noqa: F821
    check = expect()
    open_tab(page, "History")
    check(page.locator("#history-stats")).to_contain_text("Kennedy — 1 take")
    table = page.locator("#history-table")
    row_text = table.get_by_text("Ask what you can do for your country.").locator("visible=true").first
    check(row_text).to_be_visible()

    page.locator("#history-search input, #history-search textarea").first.fill("no such words")
    check(page.locator("#history-empty")).to_contain_text("No takes match this search")
    page.locator("#history-search input, #history-search textarea").first.fill("country")
    check(row_text).to_be_visible()

    row_text.click()
    check(group(page, "history-detail")).to_be_visible()
    check(page.locator("#history-info")).to_contain_text("4242")
    check(page.locator("#history-player")).to_contain_text(re.compile(r"0:0[1-9]"))  # the take has loaded
    screenshot(page, "history")

    with page.expect_download() as download_info:
        page.locator("#history-download").click()
    download = download_info.value
    assert download.suggested_filename.startswith(
        "voicebox-Kennedy-"
    ) and download.suggested_filename.endswith(".wav")
    assert Path(download.path()).read_bytes()[:4] == b"RIFF"

    page.locator("#history-reuse").click()
    check(page.get_by_role("tab", name="Generate", exact=True)).to_have_attribute("aria-selected", "true")
    check(page.locator("#gen-text textarea")).to_have_value("Ask what you can do for your country.")
    check(page.locator("#gen-seed input, #gen-seed textarea").first).to_have_value("4242")

    open_tab(page, "History")
    page.locator("#history-table").get_by_text("Ask what you can do").locator("visible=true").first.click()
    page.locator("#history-delete").click()
    check(group(page, "history-confirm")).to_contain_text("Delete this take?")
    page.locator("#history-confirm-delete").click()
    check(page.locator("#history-empty")).to_contain_text("Nothing here yet")
    check(page.locator("#history-stats")).to_contain_text(re.compile(r"Takes\s*0"))
    check(group(page, "history-detail")).to_be_hidden()


def test_transcribe_tab(page: "Page", jfk_path: Path) -> None:  # noqa: F821
    check = expect()
    open_tab(page, "Transcribe")
    page.locator("#transcribe-audio input[type=file]").set_input_files(str(jfk_path))
    check(
        page.locator("#transcribe-audio audio, #transcribe-audio [data-testid=waveform-x]").first
    ).to_be_attached()
    page.locator("#transcribe-button").click()
    check(page.locator("#transcribe-text textarea")).to_have_value(
        re.compile("ask not what your country", re.I)
    )
    check(page.locator("#transcribe-info")).to_contain_text("English (en)")
    check(page.locator("#transcribe-segments")).to_contain_text("0.00")
    screenshot(page, "transcribe")


def test_models_tab_loads_and_unloads(page: "Page") -> None:  # noqa: F821
    check = expect()
    open_tab(page, "Models")
    check(page.locator("#models-tts")).to_contain_text("Loaded")  # the generation loaded it
    check(page.locator("#models-cache")).to_contain_text("In memory")
    screenshot(page, "models")
    page.locator("#models-unload-tts").click()
    check(page.locator("#models-tts")).to_contain_text("Not loaded")


def test_delete_profile_asks_for_confirmation(page: "Page") -> None:  # noqa: F821
    check = expect()
    open_tab(page, "Profiles")
    page.locator("#profile-list").get_by_text("Kennedy · 2 samples").click()
    check(page.locator("#profile-heading")).to_contain_text("Kennedy")
    page.locator("#profile-delete").click()
    check(page.locator("#profile-confirm-text")).to_contain_text("Delete Kennedy? Its 2 samples")
    screenshot(page, "profiles-delete-confirm")
    page.locator("#profile-keep").click()
    check(group(page, "profile-confirm")).to_be_hidden()
    check(page.locator("#profile-list")).to_contain_text("Kennedy")

    page.locator("#profile-delete").click()
    page.locator("#profile-confirm-delete").click()
    check(page.locator("#profile-empty")).to_contain_text("No profiles yet")
    check(page.locator("#profile-heading")).to_contain_text("New profile")
