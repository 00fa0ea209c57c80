"""The Batch tab: lines in, a ZIP out.

The handlers first, called directly (how lines and files are read, which refusals name which
line), then the page in Chromium on a laptop and a phone with the espeak-ng backend: three pasted
lines, one of them ``Keeper: …``, become a ZIP of three WAVs and batch.json; a line with a name no
profile has is refused with a toast and the box keeps what was typed; a long batch shows its
progress and can be cancelled; and all seven tabs still fit on the phone.
"""

from __future__ import annotations

import json
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import pytest

from tests.support.browser import chromium, error_badges, expect, field, new_page, open_tab, screenshot, toast
from tests.support.espeak_backend import EspeakBackend
from tests.support.studio import serve_app
from voicebox.batch import MAX_ITEMS
from voicebox.config import Settings
from voicebox.errors import InvalidInput
from voicebox.services import Studio
from voicebox.ui.batch import BatchHandlers, Voices, parse_csv_lines, parse_lines, read_file
from voicebox.ui.common import TempAudio, UIContext

VOICES = [("Keeper", "id-keeper"), ("Sailor", "id-sailor")]
LINES = "The keeper climbed the stairs.\n\nKeeper: He lit the lamp.\nThree ships passed safely."


def refusal(call: Callable[[], Any]) -> str:
    """The message of an InvalidInput raised by ``call``."""
    with pytest.raises(InvalidInput) as caught:
        call()
    return caught.value.message


# ---- reading lines and files --------------------------------------------------------------------
def test_each_non_empty_line_is_a_clip_and_a_name_picks_its_voice() -> None:
    lines = parse_lines(LINES + "\n  sailor :  Who   goes there?  \nAt 10:30 we left.", Voices(VOICES, "id-sailor"))
    assert [(l.line, l.voice, l.text) for l in lines] == [
        (1, "Sailor", "The keeper climbed the stairs."),
        (3, "Keeper", "He lit the lamp."),
        (4, "Sailor", "Three ships passed safely."),
        (5, "Sailor", "Who goes there?"),  # the name in any case and spacing, as the service matches it
        (6, "Sailor", "At 10:30 we left."),  # a time is not a name
    ]
    assert lines[0].item() == {"text": "The keeper climbed the stairs.", "voice": "Sailor", "language": None}


def test_line_refusals_name_the_line_and_say_what_to_do() -> None:
    voices = Voices(VOICES, "id-keeper")
    message = refusal(lambda: parse_lines("Fine.\n\nBob: Who goes there?", voices))
    assert message.startswith("Line 3: no voice profile is named 'Bob'") and "Keeper, Sailor" in message
    assert "'Keeper: Bob: …'" in message  # how to speak a line that starts with a word and a colon
    assert "nothing to say" in refusal(lambda: parse_lines("Keeper:", voices))
    assert "paste one line per clip" in refusal(lambda: parse_lines(" \n\n  ", voices))
    assert refusal(lambda: parse_lines("Hello.", Voices(VOICES, None))).startswith("Line 1 names no voice")
    assert parse_lines("Keeper: Hello.", Voices(VOICES, None))[0].voice == "Keeper"  # no default needed
    too_many = refusal(lambda: parse_lines("\n".join(["Hi."] * (MAX_ITEMS + 1)), voices))
    assert f"{MAX_ITEMS + 1} clips" in too_many and f"at most {MAX_ITEMS}" in too_many


def test_a_csv_names_voices_and_languages_and_an_empty_voice_takes_the_default() -> None:
    text = "voice,text,language\nKeeper,\"Hello, sea.\",English\n,The default speaks.,\n"
    lines = parse_csv_lines(text, Voices(VOICES, "id-sailor"))
    assert [(l.line, l.voice, l.text, l.language) for l in lines] == [
        (2, "Keeper", "Hello, sea.", "English"),
        (3, "Sailor", "The default speaks.", None),
    ]
    assert refusal(lambda: parse_csv_lines("voice,text\nBob,Hi.\n", Voices(VOICES, None))).startswith(
        "Line 2: no voice profile is named 'Bob'")


def test_files_are_read_by_their_kind_and_empty_or_other_files_are_refused(tmp_path: Path) -> None:
    voices = Voices(VOICES, "id-keeper")
    txt, csv, empty, other = (tmp_path / n for n in ("lines.txt", "lines.csv", "empty.txt", "notes.md"))
    txt.write_bytes(b"\xef\xbb\xbfSailor: Ahoy.\r\nLand ho.\r\n")
    csv.write_text("text,voice\nAhoy.,Sailor\n")
    empty.write_text("\n  \n")
    other.write_text("# Notes")
    assert [(l.voice, l.text) for l in read_file(txt, voices)] == [("Sailor", "Ahoy."), ("Keeper", "Land ho.")]
    assert [(l.voice, l.text) for l in read_file(csv, voices)] == [("Sailor", "Ahoy.")]
    assert refusal(lambda: read_file(empty, voices)) == "empty.txt is empty: the file has no text to speak."
    assert "not a .txt or .csv file" in refusal(lambda: read_file(other, voices))


# ---- the handlers on a real studio --------------------------------------------------------------
@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory, shared_asr: Any, espeak_wav: Path) -> Studio:
    settings = Settings(data_dir=tmp_path_factory.mktemp("batch-ui") / "data", quality="off")
    studio = Studio(settings, tts=EspeakBackend(), asr=shared_asr)
    for name in ("Keeper", "Sailor"):
        profile = studio.create_profile(name, language="English")
        studio.add_sample(profile.id, espeak_wav, "The quick brown fox jumps over the lazy dog near the river bank.")
    return studio


@pytest.fixture
def handlers(studio: Studio, tmp_path: Path) -> BatchHandlers:
    return BatchHandlers(UIContext(studio, studio.settings, TempAudio(tmp_path / "copies")))


def refused(call: Callable[[], Any]) -> str:
    """A ``refusing`` handler's toast (a warning outside an event) and that it changed nothing."""
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        result = call()
    assert isinstance(result, dict) and result.get("__type__") == "update" and len(result) == 1, result  # gr.skip()
    return str(shown[-1].message)


def test_make_then_tick_until_the_zip_and_the_timer_stops(handlers: BatchHandlers, studio: Studio) -> None:
    sailor = studio.find_profile("Sailor").id
    batch_id, status, cancel, download, timer = handlers.make(sailor, LINES, None, "")
    assert "0 of 3 done" in status and cancel["visible"] and not download["visible"]
    assert isinstance(timer, gr.Timer) and timer.active
    assert "still running" in refused(lambda: handlers.make(sailor, LINES, None, batch_id))
    studio.batches.wait(batch_id, 120)
    status, cancel, download, timer = handlers.tick(batch_id)
    assert "All 3 clips are made" in status and not cancel["visible"] and not timer.active
    with zipfile.ZipFile(download["value"]) as archive:
        names = archive.namelist()
        summary = json.loads(archive.read("batch.json"))
    assert sorted(n for n in names if n.endswith(".wav")) == ["001-the-keeper-climbed-the-stairs.wav",
                                                               "002-he-lit-the-lamp.wav", "003-three-ships-passed-safely.wav"]
    assert [i["voice"] for i in summary["items"]] == ["Sailor", "Keeper", "Sailor"]
    assert Path(download["value"]).is_relative_to(handlers.ctx.temp.root)  # a private copy, not the data dir
    idle = handlers.tick("")
    assert idle[:3] == (gr.skip(),) * 3 and not idle[3].active


def test_refusals_leave_the_page_as_it_was(handlers: BatchHandlers, studio: Studio, tmp_path: Path) -> None:
    keeper = studio.find_profile("Keeper").id
    assert refused(lambda: handlers.make(keeper, "Fine.\nBob: Hi.", None, "")).startswith("Line 2: no voice profile is named 'Bob'")
    assert "no lines" in refused(lambda: handlers.make(keeper, "", None, ""))
    # the service's own checks count items; the tab says which line
    assert refused(lambda: handlers.make(keeper, "Fine.\n\n" + "x" * 6000, None, "")).startswith("Line 3: ")
    assert refused(lambda: handlers.cancel("")) == "No batch is running."
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert refused(lambda: handlers.make(keeper, "These lines are not used.", str(empty), "")).startswith("empty.csv is empty")


def test_a_chosen_file_is_used_instead_of_the_lines(handlers: BatchHandlers, studio: Studio, tmp_path: Path) -> None:
    lines = tmp_path / "lines.csv"
    lines.write_text("voice,text\nSailor,Ahoy there.\n")
    batch_id, *_ = handlers.make(studio.find_profile("Keeper").id, "Not this.", str(lines), "")
    done = studio.batches.wait(batch_id, 120)
    assert [(i.voice, i.text, i.status) for i in done.items] == [("Sailor", "Ahoy there.", "done")]


def test_cancel_stops_a_running_batch(handlers: BatchHandlers, studio: Studio) -> None:
    keeper = studio.find_profile("Keeper").id
    batch_id, *_ = handlers.make(keeper, "\n".join(f"Ship number {n} passed the light." for n in range(40)), None, "")
    status, cancel = handlers.cancel(batch_id)
    assert "Cancelling" in status and cancel["interactive"] is False
    studio.batches.wait(batch_id, 120)
    status, cancel, _, timer = handlers.tick(batch_id)
    assert "Cancelled after" in status and not timer.active


def test_the_timer_is_off_until_a_batch_starts(handlers: BatchHandlers) -> None:
    from voicebox.ui import batch

    with gr.Blocks() as demo, gr.Tabs():
        batch.build(handlers.ctx)
    timers = [block for block in demo.blocks.values() if isinstance(block, gr.Timer)]
    assert len(timers) == 1 and timers[0].active is False  # an idle page never polls


def test_the_voice_picker_keeps_a_choice_and_else_takes_the_first(handlers: BatchHandlers, studio: Studio) -> None:
    sailor = studio.find_profile("Sailor").id
    assert handlers.voices(sailor)["value"] == sailor
    update = handlers.voices("gone")
    assert update["value"] == studio.find_profile("Keeper").id and [c[0] for c in update["choices"]] == ["Keeper", "Sailor"]


# ---- in the browser -----------------------------------------------------------------------------
@pytest.fixture(scope="module", params=["desktop", "phone"])
def viewport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def app(viewport: str, tmp_path_factory: pytest.TempPathFactory, shared_asr: Any, espeak_wav: Path) -> Iterator[tuple[str, Studio]]:
    settings = Settings(data_dir=tmp_path_factory.mktemp(f"batch-{viewport}") / "data", quality="off")
    studio = Studio(settings, tts=EspeakBackend(), asr=shared_asr)
    for name in ("Keeper", "Sailor"):
        profile = studio.create_profile(name, language="English")
        studio.add_sample(profile.id, espeak_wav, "The quick brown fox jumps over the lazy dog near the river bank.")
    for url in serve_app(settings, studio):
        yield url, studio


@pytest.mark.browser
@pytest.mark.slow
def test_pasted_lines_become_a_zip(app: tuple[str, Studio], viewport: str, tmp_path: Path) -> None:
    check = expect()
    url, _ = app
    with chromium() as browser:
        page = new_page(browser, url, viewport)
        open_tab(page, "Batch")
        check(page.locator("#batch-voice input")).to_have_value("Keeper")
        page.locator("#batch-voice input").click()
        page.get_by_role("option", name="Sailor").click()
        check(page.get_by_role("option", name="Sailor")).to_be_hidden()
        field(page, "batch-lines").fill(LINES)
        screenshot(page, f"batch-ready-{viewport}")
        page.locator("#batch-make").click()
        check(page.locator("#batch-download")).to_be_visible()
        check(page.locator("#batch-status")).to_contain_text("All 3 clips are made")
        check(page.locator("#batch-cancel")).to_be_hidden()
        check(error_badges(page)).to_have_count(0)
        screenshot(page, f"batch-done-{viewport}")
        with page.expect_download() as info:
            page.locator("#batch-download").click()
        saved = tmp_path / "batch.zip"
        info.value.save_as(saved)
        page.context.close()
    with zipfile.ZipFile(saved) as archive:
        names = archive.namelist()
        summary = json.loads(archive.read("batch.json"))
    assert len([n for n in names if n.endswith(".wav")]) == 3 and "batch.json" in names
    assert [(i["voice"], i["status"]) for i in summary["items"]] == [("Sailor", "done"), ("Keeper", "done"), ("Sailor", "done")]


@pytest.mark.browser
@pytest.mark.slow
def test_an_unknown_name_is_refused_and_the_lines_stay(app: tuple[str, Studio], viewport: str) -> None:
    check = expect()
    url, studio = app
    before = len(studio.batches._batches)
    typed = "Keeper: Who keeps the light?\nBob: I do."
    with chromium() as browser:
        page = new_page(browser, url, viewport)
        open_tab(page, "Batch")
        check(page.locator("#batch-voice input")).to_have_value("Keeper")
        field(page, "batch-lines").fill(typed)
        page.locator("#batch-make").click()
        check(toast(page, "warning", "Line 2: no voice profile is named 'Bob'")).to_be_visible()
        check(field(page, "batch-lines")).to_have_value(typed)
        check(page.locator("#batch-download")).to_be_hidden()
        check(error_badges(page)).to_have_count(0)
        screenshot(page, f"batch-refused-{viewport}")
        page.context.close()
    assert len(studio.batches._batches) == before  # nothing started


@pytest.mark.browser
@pytest.mark.slow
def test_a_long_batch_shows_progress_and_cancels(app: tuple[str, Studio], viewport: str) -> None:
    check = expect()
    url, _ = app
    lines = "\n".join(f"Ship number {n} passed the lighthouse at dawn, and the keeper wrote it down." for n in range(1, 61))
    with chromium() as browser:
        page = new_page(browser, url, viewport)
        open_tab(page, "Batch")
        check(page.locator("#batch-voice input")).to_have_value("Keeper")
        field(page, "batch-lines").fill(lines)
        page.locator("#batch-make").click()
        check(page.locator("#batch-status")).to_contain_text("of 60 done", timeout=10_000)
        check(page.locator("#batch-status")).to_contain_text("making clip")
        screenshot(page, f"batch-running-{viewport}")
        page.locator("#batch-cancel").click()
        check(page.locator("#batch-status")).to_contain_text("Cancelled after")
        check(page.locator("#batch-cancel")).to_be_hidden()
        check(error_badges(page)).to_have_count(0)
        page.context.close()


@pytest.mark.browser
@pytest.mark.slow
def test_all_seven_tabs_fit_without_an_overflow_menu(app: tuple[str, Studio], viewport: str) -> None:
    url, _ = app
    with chromium() as browser:
        page = new_page(browser, url, viewport)
        tabs = page.get_by_role("tab")
        assert [t.strip() for t in tabs.all_inner_texts()] == [
            "Profiles", "Generate", "History", "Projects", "Batch", "Transcribe", "Models"]
        width = page.viewport_size["width"]
        for tab in tabs.all():
            box = tab.bounding_box()
            assert tab.is_visible() and box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, box
            assert tab.evaluate("b => b.scrollWidth <= b.clientWidth")  # the whole label, no ellipsis
        assert page.locator(".overflow-menu button").filter(visible=True).count() == 0
        page.context.close()
