""""Your data" in the browser (issue #16): download the library, refuse a delete with the wrong
words, delete everything with the right ones, and import the ZIP back, at 1280×900 and 390×844.

Each walk reads what a person sees: the counts line, the toast, the confirmation panel, the
Profiles list's empty state, the Generate tab's voice picker, and that no red "Error" badge is
left. The ZIP the page hands out is opened and checked. One server (espeak-ng speech, the
session's Whisper) serves both walks; each starts from a library of one voice.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.support.browser import (
    chromium,
    close_toasts,
    error_badges,
    expect,
    field,
    group,
    new_page,
    open_tab,
    screenshot,
    toast,
)
from tests.support.espeak_backend import EspeakBackend
from tests.support.studio import serve_app
from voicebox.config import Settings
from voicebox.my_data import delete_everything
from voicebox.services import Studio

pytestmark = [pytest.mark.browser]

WORDS = "The quick brown fox jumps over the lazy dog near the river bank."


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, shared_asr: Any) -> Iterator[tuple[str, Studio]]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("account-ui") / "data", quality="off", quotas="off",
                        rate_limit="off")
    studio = Studio(settings, tts=EspeakBackend(), asr=shared_asr)
    for url in serve_app(settings, studio):
        yield url, studio


@pytest.fixture(scope="module")
def browser(app: tuple[str, Studio]) -> Iterator[Any]:
    with chromium() as browser:
        yield browser


def no_sideways_scroll(page: Any) -> None:
    """Nothing sticks out past the right edge of the screen (a phone would scroll sideways)."""
    width = page.viewport_size["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_download_delete_everything_and_import_back(
    browser: Any, app: tuple[str, Studio], espeak_wav: Path, viewport: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, studio = app
    check = expect()
    name = f"Narrator {viewport}"
    delete_everything(studio, "")  # the walk before left its import behind
    voice = studio.create_profile(name, language="English")
    studio.add_sample(voice.id, espeak_wav, WORDS)

    page = new_page(browser, url, viewport)
    check(page.locator("#profile-list")).to_contain_text(f"{name} · 1 sample")
    page.locator("#profile-list").get_by_text(name).click()  # open it in the editor
    check(field(page, "profile-name")).to_have_value(name)
    page.locator("#vb-account").get_by_text("Your data", exact=True).click()
    counts = page.locator("#account-counts")
    check(counts).to_contain_text("1 profile (1 sample) · 0 takes in History · 0 projects")

    # Download: a Save button appears, and what it saves is the library
    page.locator("#account-download").click()
    save = page.locator("#account-save")
    check(save).to_be_visible()
    check(page.locator("#account-status")).to_contain_text("Your ZIP is ready: voicebox-my-data-")
    with page.expect_download() as got:
        save.click()
    assert got.value.suggested_filename.startswith("voicebox-my-data-")
    zip_path = tmp_path / got.value.suggested_filename
    got.value.save_as(zip_path)
    with zipfile.ZipFile(zip_path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        sample = manifest["profiles"][0]["samples"][0]
        assert [p["name"] for p in manifest["profiles"]] == [name]
        assert archive.read(sample["file"])[:4] == b"RIFF"
        assert archive.read(sample["transcript_file"]).decode() == WORDS

    # Delete everything with the wrong words: refused, the panel and the data stay
    page.locator("#account-delete").click()
    panel = group(page, "account-confirm")
    check(panel).to_be_visible()
    check(page.locator("#account-confirm-text")).to_contain_text("1 profile (1 sample)")
    field(page, "account-words").fill("delete it all")
    page.locator("#account-confirm-delete").click()
    check(toast(page, "warning", "Nothing was deleted")).to_be_visible()
    check(panel).to_be_visible()
    check(field(page, "account-words")).to_have_value("delete it all")
    check(counts).to_contain_text("1 profile (1 sample)")
    check(page.locator("#profile-list")).to_contain_text(f"{name} · 1 sample")
    check(error_badges(page)).to_have_count(0)
    assert studio.find_profile(name).id == voice.id

    # the right words while a project export is being written: refused too, nothing changes
    monkeypatch.setattr(studio.exports, "running_for", lambda owner: True)
    field(page, "account-words").fill("delete everything")
    page.locator("#account-confirm-delete").click()
    check(toast(page, "warning", "A project export is being written")).to_be_visible()
    check(panel).to_be_visible()
    check(counts).to_contain_text("1 profile (1 sample)")
    check(page.locator("#profile-list")).to_contain_text(f"{name} · 1 sample")
    check(error_badges(page)).to_have_count(0)
    assert studio.find_profile(name).id == voice.id
    monkeypatch.undo()
    no_sideways_scroll(page)
    if viewport == "phone":  # the panel's buttons take the whole width, one above the other
        box = panel.bounding_box()
        cancel, confirm = (page.locator(f"#{b}").bounding_box() for b in ("account-cancel", "account-confirm-delete"))
        assert confirm["width"] > 0.85 * box["width"] and confirm["y"] > cancel["y"] + cancel["height"] - 1
    close_toasts(page)
    screenshot(page, f"account-{viewport}")

    # ...and with the right ones: an empty library everywhere on the page
    field(page, "account-words").fill("Delete  Everything")
    page.locator("#account-confirm-delete").click()
    check(counts).to_contain_text("Your library is empty")
    check(panel).to_be_hidden()
    check(save).to_be_hidden()
    check(page.locator("#account-status")).to_contain_text("Deleted 1 profile, 1 sample")
    check(page.locator("#profile-empty")).to_contain_text("No profiles yet")
    check(page.locator("#profile-list")).to_be_hidden()
    check(page.get_by_text(name)).to_have_count(0)
    check(page.locator("#profile-heading")).to_contain_text("New profile")  # the open profile is gone too
    check(field(page, "profile-name")).to_have_value("")
    assert studio.list_profiles()["total"] == 0

    # Import the ZIP: the voice is back in the Profiles list and the Generate picker
    with page.expect_file_chooser() as chooser:
        page.locator("#account-import").click()
    chooser.value.set_files(str(zip_path))
    check(page.locator("#account-status")).to_contain_text("Imported: 1 profile (1 sample), 0 takes in History")
    check(counts).to_contain_text("1 profile (1 sample)")
    check(page.locator("#profile-list")).to_contain_text(f"{name} · 1 sample")
    check(error_badges(page)).to_have_count(0)
    open_tab(page, "Generate")
    check(page.locator("#gen-profile input")).to_have_value(name)
    assert studio.find_profile(name).id != voice.id  # a new record, from the ZIP
    page.context.close()
