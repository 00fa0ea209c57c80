"""The Projects tab in the browser, on a laptop and a phone: a 500-block book imports and pages
without trouble, a block opens for editing, and a short project renders in the background (the
status line follows it without reloading the page) and exports as an audiobook.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.support.browser import chromium, error_badges, expect, new_page, open_tab, screenshot, toast
from tests.support.espeak_backend import EspeakBackend
from tests.support.studio import serve_app
from voicebox.config import Settings
from voicebox.services import Studio

pytestmark = [pytest.mark.browser, pytest.mark.slow]
#: How many lines an element's text takes on screen (one rectangle per line box of its text).
LINES_OF_TEXT = "el => { const r = document.createRange(); r.selectNodeContents(el); return r.getClientRects().length; }"


@pytest.fixture(scope="module", params=["desktop", "phone"])
def viewport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def app(viewport: str, tmp_path_factory: pytest.TempPathFactory, shared_asr: Any, espeak_wav: Path) -> Iterator[tuple[str, Studio]]:
    settings = Settings(data_dir=tmp_path_factory.mktemp(f"projects-{viewport}") / "data", quality="off")
    studio = Studio(settings, tts=EspeakBackend(), asr=shared_asr)
    profile = studio.create_profile("Keeper", language="English")
    studio.add_sample(profile.id, espeak_wav, "The quick brown fox jumps over the lazy dog near the river bank.")
    for url in serve_app(settings, studio):
        yield url, studio


def test_a_500_block_book_imports_pages_and_opens_a_block(app: tuple[str, Studio], viewport: str, tmp_path: Path) -> None:
    check = expect()
    url, studio = app
    book = tmp_path / "book.txt"
    book.write_text("\n\n".join(f"Paragraph number {n}. The keeper counted the ships." for n in range(1, 501)))
    with chromium() as browser:
        page = new_page(browser, url, viewport)
        open_tab(page, "Projects")
        page.locator("#project-new").click()
        page.locator("#project-voice input").click()
        page.get_by_role("option", name="Keeper").click()
        page.locator("#project-file input[type=file]").set_input_files(str(book))
        page.locator("#project-import").click()
        check(toast(page, "info", "Imported 500 blocks")).to_be_visible()
        check(page.locator("#project-page")).to_contain_text("Page 1 of 20")
        check(page.locator("#project-status")).to_contain_text("500 of 500 block(s) to render")
        page.locator("#project-next").click()
        check(page.locator("#project-page")).to_contain_text("Page 2 of 20")
        number = page.locator("#project-blocks").get_by_text("27", exact=True).locator("visible=true").first
        assert number.evaluate(LINES_OF_TEXT) == 1  # the block's number on one line
        page.locator("#project-blocks").get_by_text("Paragraph number 27.").locator("visible=true").first.click()
        check(page.locator("#block-text textarea")).to_have_value("Paragraph number 27. The keeper counted the ships.")
        check(error_badges(page)).to_have_count(0)
        screenshot(page, f"projects-book-{viewport}")
        page.context.close()


def test_a_short_project_renders_in_the_background_and_exports(app: tuple[str, Studio], viewport: str) -> None:
    check = expect()
    url, studio = app
    voice = studio.find_profile("Keeper").id
    lines = ["The keeper climbed the stairs.", "He lit the lamp.", "Three ships passed safely."]
    project = studio.projects.create(f"Log {viewport}", voice=voice, blocks=[{"text": t} for t in lines])
    with chromium() as browser:
        page = new_page(browser, url, viewport)
        open_tab(page, "Projects")
        page.locator("#project-pick input").click()
        page.get_by_role("option", name=f"Log {viewport}").click()
        check(page.locator("#project-status")).to_contain_text("3 of 3 block(s) to render")
        page.locator("#project-render").click()
        check(page.locator("#project-status")).to_contain_text("All 3 blocks are rendered", timeout=60_000)
        check(page.locator("#project-blocks")).not_to_contain_text("to render")
        page.locator("#project-export").click()
        check(page.locator("#project-export-status")).to_contain_text("Exported")
        check(page.locator("#project-download")).to_be_visible()
        check(page.locator("#project-download-subs")).to_be_visible()  # the SRT beside the audiobook
        check(error_badges(page)).to_have_count(0)
        screenshot(page, f"projects-rendered-{viewport}")
        page.context.close()
    done = studio.projects.store.get(project.id)
    assert [b.status for b in done.blocks] == ["rendered"] * 3


def test_a_block_is_heard_split_moved_and_merged_and_a_refusal_changes_nothing(
    app: tuple[str, Studio], viewport: str
) -> None:
    """The block editor as a person uses it: open a rendered block (its player and its sentences),
    ask for something impossible (merge the last block), split at the cursor, move, merge."""
    check = expect()
    url, studio = app
    voice = studio.find_profile("Keeper").id
    first = "The keeper climbed the stairs. He lit the lamp at dusk."
    project = studio.projects.create(f"Edit {viewport}", voice=voice,
                                     blocks=[{"text": t} for t in (first, "Ships passed.", "The night was calm.")])
    studio.renders.start(project.id)
    studio.renders.wait(project.id, timeout=120)
    with chromium() as browser:
        page = new_page(browser, url, viewport)
        open_tab(page, "Projects")
        page.locator("#project-pick input").click()
        page.get_by_role("option", name=f"Edit {viewport}").click()
        table = page.locator("#project-blocks")
        check(page.locator("#project-status")).to_contain_text("All 3 blocks are rendered")

        status_cell = table.get_by_text("✓ rendered").locator("visible=true").first
        assert status_cell.evaluate(LINES_OF_TEXT) == 1  # the word is whole, on one line
        table.get_by_text("The night was calm.").locator("visible=true").first.click()
        check(page.locator("#block-title")).to_contain_text("Block 3 of 3")
        check(page.locator("#block-state")).to_contain_text("Rendered.")
        check(page.locator("#block-player audio, #block-player button").first).to_be_attached()
        check(page.locator("#block-sentence-editor")).to_be_visible()
        words = page.locator("#block-sentence-words textarea")
        check(words).to_have_value("The night was calm.")
        words.fill("The night was very calm.")
        words.press("Tab")
        page.locator("#block-sentence-retake").click()  # a new take of the sentence, with the new words
        check(toast(page, "info", "Sentence 1: take 2 is in use")).to_be_visible()
        check(page.locator("#block-text textarea")).to_have_value("The night was very calm.")
        check(table).to_contain_text("The night was very calm.")
        page.locator("#block-merge").click()
        check(toast(page, "warning", "last block")).to_be_visible()
        check(page.locator("#block-text textarea")).to_have_value("The night was very calm.")
        check(error_badges(page)).to_have_count(0)

        # an effect on the block: its take plays with it at once, no new render
        page.locator("#block-effect input").click()
        page.get_by_role("option", name="Radio").click()
        page.locator("#block-save").click()
        check(toast(page, "info", "Block saved.")).to_be_visible()
        check(page.locator("#block-state")).to_contain_text("Rendered.")
        check(page.locator("#block-effect input")).to_have_value("Radio")
        third = studio.projects.store.get(project.id).blocks[2]
        assert third.effects.preset == "radio" and studio.get_generation(third.generation_id).effects.preset == "radio"
        screenshot(page, f"project-block-effect-{viewport}")

        table.get_by_text("The keeper climbed").locator("visible=true").first.click()
        check(page.locator("#block-title")).to_contain_text("Block 1 of 3")
        box = page.locator("#block-text textarea")
        check(box).to_have_value(first)
        box.click()
        box.evaluate(f"el => el.setSelectionRange({first.index('He lit')}, {first.index('He lit')})")
        page.locator("#block-split").click()
        check(toast(page, "info", "Split into blocks 1 and 2")).to_be_visible()
        check(page.locator("#block-title")).to_contain_text("Block 1 of 4")
        check(box).to_have_value("The keeper climbed the stairs.")
        check(page.locator("#project-status")).to_contain_text("2 of 4 block(s) to render")

        page.locator("#project-export").click()  # not everything is rendered: refused, nothing offered
        check(toast(page, "warning", "Render the project first")).to_be_visible()
        check(page.locator("#project-download")).to_be_hidden()

        page.locator("#block-down").click()
        check(page.locator("#block-title")).to_contain_text("Block 2 of 4")
        page.locator("#block-merge").click()
        check(toast(page, "info", "Merged with the next block")).to_be_visible()
        check(page.locator("#block-title")).to_contain_text("Block 2 of 3")
        check(box).to_have_value("The keeper climbed the stairs. Ships passed.")
        check(error_badges(page)).to_have_count(0)
        screenshot(page, f"projects-block-editor-{viewport}")
        page.context.close()
    texts = [b.text for b in studio.projects.store.get(project.id).blocks]
    assert texts == ["He lit the lamp at dusk.", "The keeper climbed the stairs. Ships passed.", "The night was very calm."]
