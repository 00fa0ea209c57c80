"""Journeys through the studio as a person walks them, mistakes included, on a laptop and a phone.

Each test clicks and types in Debian's Chromium, makes the mistake a person makes, reads what is
on screen (the toast, the status line, which button shows, that no red "Error" badge is left on
the form), checks what was stored through the service layer, and carries on. Every journey runs
at 1280×900 and at 390×844; screenshots land in ``tests/artifacts/`` for people to look at.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import (
    chromium,
    close_toasts,
    error_badges,
    expect,
    field,
    group,
    new_page,
    open_accordion,
    open_tab,
    screenshot,
    toast,
)
from tests.support.studio import serve_app, studio_settings
from voicebox.records import GenerationRequest, Profile
from voicebox.services import Studio

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: Long enough that a take on the tiny model runs for many seconds (it speaks to its length cap).
LONG_TAKE = " ".join(f"Sentence number {n} keeps the voice talking for quite a while longer." for n in range(14))
#: The take that waits in line behind it: short, as the tiny model speaks to its length cap.
SHORT_TAKE = "Next in line."


@pytest.fixture(scope="module", params=["desktop", "phone"])
def viewport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def studio_app(
    viewport: str, tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path, whisper_tiny_path: str
) -> Iterator[tuple[str, Studio]]:
    """The whole app, fresh per viewport; takes run to their length (no frame cap), so a long
    text takes long enough to be cancelled or waited behind."""
    settings = studio_settings(
        tmp_path_factory.mktemp(f"journeys-{viewport}") / "data", tiny_checkpoint, whisper_tiny_path, max_frames=0
    )
    studio = Studio(settings)
    for url in serve_app(settings, studio):
        yield url, studio


@pytest.fixture(scope="module")
def browser(studio_app: tuple[str, Studio]) -> Iterator[Any]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser: Any, studio_app: tuple[str, Studio], viewport: str) -> Iterator[Any]:
    page = new_page(browser, studio_app[0], viewport)
    yield page
    page.context.close()


@pytest.fixture
def open_page(browser: Any, studio_app: tuple[str, Studio], viewport: str) -> Iterator[Callable[[], Any]]:
    """For a test that first makes its data through the service layer: it opens the app when the
    data is there (one page load, not a load and a reload)."""
    pages: list[Any] = []

    def open_app() -> Any:
        pages.append(new_page(browser, studio_app[0], viewport))
        return pages[-1]

    yield open_app
    for opened in pages:
        opened.context.close()


@pytest.fixture
def studio(studio_app: tuple[str, Studio]) -> Studio:
    return studio_app[1]


def voiced(studio: Studio, name: str, sample: Path, text: str = "The quick brown fox.") -> Profile:
    """A profile with one sample, made through the service layer (the upload journey is its own test)."""
    profile = studio.create_profile(name)
    studio.add_sample(profile.id, sample, text)
    return studio.get_profile(profile.id)


def open_profile(page: Any, name: str) -> None:
    page.locator("#profile-list").get_by_text(name).click()
    expect()(page.locator("#profile-heading")).to_contain_text(name)


def generate_ready(page: Any) -> None:
    """The Generate button is back and Cancel is gone."""
    expect()(page.locator("#gen-button")).to_be_visible()
    expect()(page.locator("#gen-cancel")).to_be_hidden()


# ---- the check behind "no Error badge": it must see a real one -----------------------------------
@pytest.fixture(scope="module")
def failing_form() -> Iterator[str]:
    """A Gradio page whose one handler raises (one server for both viewports)."""
    import gradio as gr

    def fail(text: str) -> str:
        raise gr.Error("refused")

    with gr.Blocks() as demo:
        with gr.Column(elem_classes="contain"):
            box = gr.Textbox(elem_id="box")
            out = gr.Textbox(elem_id="out")
        box.submit(fail, inputs=box, outputs=out)
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        yield url
    finally:
        demo.close()


def test_the_badge_check_sees_a_real_error_badge(browser: Any, failing_form: str, viewport: str) -> None:
    """A handler that raises leaves Gradio's "Error" badge on its output: ``error_badges`` finds it,
    so the journeys' ``to_have_count(0)`` can fail."""
    page = browser.new_page(viewport={"width": 1280, "height": 900} if viewport == "desktop" else {"width": 390, "height": 844})
    page.goto(failing_form)
    field(page, "box").fill("x")
    field(page, "box").press("Enter")
    expect()(error_badges(page).first).to_be_visible()
    page.close()


# ---- profiles ---------------------------------------------------------------------------------
def test_sample_transcript_can_be_corrected(page: Any, studio: Studio, jfk_path: Path, viewport: str) -> None:
    check = expect()
    field(page, "profile-name").fill(f"Editor {viewport}")
    page.locator("#profile-create").click()
    page.locator("#sample-upload input[type=file]").set_input_files(str(jfk_path))
    transcript = page.locator("#sample-1 textarea").first
    check(transcript).to_have_value(re.compile("fellow Americans", re.I))
    check(transcript).to_be_editable()
    transcript.click()
    transcript.fill("And so, my fellow Americans: ask not.")
    page.locator("#sample-1 .vb-sample-save").click()
    check(toast(page, "info", "Transcript saved")).to_be_visible()
    profile = studio.find_profile(f"Editor {viewport}")
    assert studio.list_samples(profile.id)[0].reference_text == "And so, my fellow Americans: ask not."
    page.reload()
    open_profile(page, f"Editor {viewport}")
    check(page.locator("#sample-1 textarea").first).to_have_value("And so, my fellow Americans: ask not.")
    screenshot(page, f"journey-transcript-{viewport}")


def test_refused_profile_actions_leave_the_form_as_typed(page: Any, studio: Studio, viewport: str) -> None:
    check = expect()
    existing = studio.create_profile(f"Taken {viewport}")
    field(page, "profile-description").fill("typed before the mistake")
    page.locator("#profile-create").click()  # no name
    check(toast(page, "warning", "Give the profile a name")).to_be_visible()
    check(error_badges(page)).to_have_count(0)
    check(field(page, "profile-description")).to_have_value("typed before the mistake")
    check(page.locator("#profile-heading")).to_contain_text("New profile")

    field(page, "profile-name").fill(f"taken {viewport}")  # the same name, another case
    page.locator("#profile-create").click()
    check(toast(page, "warning", "already exists")).to_be_visible()
    check(error_badges(page)).to_have_count(0)
    check(field(page, "profile-name")).to_have_value(f"taken {viewport}")
    screenshot(page, f"journey-refused-create-{viewport}")

    field(page, "profile-name").fill(f"Second {viewport}")  # the way forward: another name
    page.locator("#profile-create").click()
    check(page.locator("#profile-heading")).to_contain_text(f"Second {viewport}")
    close_toasts(page)
    field(page, "profile-name").fill(f"Taken {viewport}")  # rename onto the existing one
    page.locator("#profile-save").click()
    check(toast(page, "warning", "already exists")).to_be_visible()
    check(error_badges(page)).to_have_count(0)
    check(page.locator("#profile-heading")).to_contain_text(f"Second {viewport}")
    check(page.locator("#profile-save")).to_be_enabled()
    assert studio.find_profile(f"Second {viewport}").id != existing.id  # nothing was renamed
    assert studio.get_profile(existing.id).name == f"Taken {viewport}"


def test_deleting_a_sample_asks_first(
    open_page: Callable[[], Any], studio: Studio, espeak_wav: Path, viewport: str
) -> None:
    check = expect()
    profile = voiced(studio, f"One sample {viewport}", espeak_wav)
    page = open_page()
    open_profile(page, f"One sample {viewport}")
    card = group(page, "sample-1")
    card.locator(".vb-sample-delete").click()
    confirm = card.locator(".vb-sample-confirm")
    check(confirm).to_contain_text("Delete sample 1?")
    card.locator(".vb-sample-keep").click()
    check(confirm).to_be_hidden()
    assert len(studio.list_samples(profile.id)) == 1  # asking deleted nothing
    card.locator(".vb-sample-delete").click()
    card.locator(".vb-sample-confirm-delete").click()
    check(page.locator("#samples-empty")).to_contain_text("No samples yet")
    assert studio.list_samples(profile.id) == []


def test_a_recording_without_words_says_plainly_what_to_do(page: Any, studio: Studio, viewport: str) -> None:
    """Chromium's fake microphone plays a beep: Whisper hears no words, and one plain sentence says
    what to do next (no message nested in another)."""
    check = expect()
    field(page, "profile-name").fill(f"Beep {viewport}")
    page.locator("#profile-create").click()
    check(page.locator("#profile-heading")).to_contain_text(f"Beep {viewport}")
    mic = page.locator("#sample-mic")
    mic.get_by_role("button", name="Record", exact=True).click()
    check(mic.get_by_role("button", name="Stop")).to_be_visible()
    page.wait_for_timeout(2500)  # the length of the recording, not a check
    mic.get_by_role("button", name="Stop").click()
    warning = toast(page, "warning", "Whisper heard no words in this sample")
    check(warning).to_be_visible()
    text = warning.inner_text()
    assert "Type what the sample says in its Transcript box" in text
    assert "(" not in text and "failed" not in text.lower()
    check(group(page, "sample-1")).to_be_visible()
    check(page.locator("#sample-1 textarea").first).to_be_editable()


# ---- generate -----------------------------------------------------------------------------------
def test_generate_refusals_keep_the_generate_button(
    open_page: Callable[[], Any], studio: Studio, espeak_wav: Path, viewport: str
) -> None:
    check = expect()
    studio.create_profile(f"Aaa no samples {viewport}")  # sorts first: the picker opens on it
    voiced(studio, f"Speaker {viewport}", espeak_wav)
    page = open_page()
    open_tab(page, "Generate")
    open_accordion(page, "Advanced")
    check(field(page, "gen-seed")).to_have_value("")  # blank means random, and it shows blank
    status_before = page.locator("#gen-status").inner_text()

    page.locator("#gen-button").click()  # no text
    check(toast(page, "error", "Type some text to speak")).to_be_visible()
    generate_ready(page)
    check(error_badges(page)).to_have_count(0)
    check(page.locator("#gen-status")).to_have_text(status_before)

    field(page, "gen-text").fill("Hello there.")
    page.locator("#gen-button").click()  # the picked profile has no samples
    check(toast(page, "error", "no samples yet")).to_be_visible()
    generate_ready(page)

    page.locator("#gen-profile input").click()
    page.get_by_role("option", name=f"Speaker {viewport}").click()
    field(page, "gen-seed").fill("-5")
    page.locator("#gen-button").click()
    check(toast(page, "error", "seed")).to_be_visible()
    generate_ready(page)
    check(error_badges(page)).to_have_count(0)
    check(field(page, "gen-text")).to_have_value("Hello there.")  # the typing is kept
    screenshot(page, f"journey-generate-refused-{viewport}")

    field(page, "gen-seed").fill("77")  # the way forward
    page.locator("#gen-button").click()
    check(page.locator("#gen-status")).to_contain_text("Saved to History")
    generate_ready(page)
    assert studio.list_history(limit=1)["items"][0].seed == 77


def test_long_text_is_kept_and_split_into_takes(page: Any, viewport: str) -> None:
    check = expect()
    open_tab(page, "Generate")
    paragraph = "This paragraph is long enough to matter when it is pasted many times over. " * 20
    text = "\n\n".join([paragraph.strip()] * 5)  # about 7,600 characters
    box = field(page, "gen-text")
    box.fill(text)
    check(box).to_have_value(text)  # nothing was cut
    check(page.locator("#gen-count")).to_contain_text("over the limit of one take")
    notice = group(page, "gen-too-long")
    check(notice).to_contain_text("Nothing was cut")
    screenshot(page, f"journey-long-text-{viewport}")
    page.locator("#gen-split").click()
    waiting = field(page, "gen-waiting")
    check(waiting).not_to_have_value("")
    first = box.input_value()
    assert len(first) <= 5000 and first.endswith(".")
    assert first + "\n\n" + waiting.input_value() == text
    check(notice).to_be_hidden()
    check(page.locator("#gen-count")).not_to_contain_text("over the limit")
    page.locator("#gen-next-part").click()
    check(box).not_to_have_value(first)
    check(group(page, "gen-waiting-box")).to_be_hidden()  # the rest fitted in one part


def test_cancel_and_waiting_in_line(
    open_page: Callable[[], Any], studio: Studio, espeak_wav: Path, viewport: str
) -> None:
    """One person makes a long take; another presses Generate and is told they wait; the first
    cancels (no Error badge, the Generate button back, nothing saved); the second take is made."""
    check = expect()
    voiced(studio, f"Queue {viewport}", espeak_wav)
    before = studio.history_stats()["count"]
    page = open_page()
    open_tab(page, "Generate")
    page.locator("#gen-profile input").click()
    page.get_by_role("option", name=f"Queue {viewport}").click()
    field(page, "gen-text").fill(LONG_TAKE)
    page.locator("#gen-button").click()
    check(page.locator("#gen-cancel")).to_be_visible()
    check(page.locator("#gen-status")).to_contain_text("Generating chunk")

    other = open_page()
    open_tab(other, "Generate")
    other.locator("#gen-profile input").click()
    other.get_by_role("option", name=f"Queue {viewport}").click()
    field(other, "gen-text").fill(SHORT_TAKE)
    other.locator("#gen-button").click()
    check(other.locator("#gen-status")).to_contain_text("Waiting for another take to finish — you are 1st in line")
    screenshot(other, f"journey-waiting-{viewport}")

    page.locator("#gen-cancel").click()
    check(page.locator("#gen-status")).to_contain_text("Cancelled")
    check(page.locator("#gen-live")).to_be_hidden()  # the live player stopped and went away too
    generate_ready(page)
    check(error_badges(page)).to_have_count(0)
    screenshot(page, f"journey-cancelled-{viewport}")

    check(other.locator("#gen-status")).to_contain_text("Saved to History")
    generate_ready(other)
    texts = [item.text for item in studio.list_history(limit=5)["items"]]
    assert SHORT_TAKE in texts and LONG_TAKE not in texts
    assert studio.history_stats()["count"] == before + 1


# ---- history --------------------------------------------------------------------------------------
def test_history_reads_well_and_deleting_a_take_asks(page: Any, studio: Studio, espeak_wav: Path, viewport: str) -> None:
    check = expect()
    profile = voiced(studio, f"Historian {viewport}", espeak_wav)
    # 8 frames: this module's takes are uncapped, and a take of this text would make ~90 frames
    # twice (the tiny model runs to its cap and is made again); the journey is about the History
    # tab, not the take's length
    record = studio.generate(
        GenerationRequest(profile.id, f"A take to find in history on the {viewport}.", seed=3, max_new_tokens=8)
    )
    open_tab(page, "History")
    field(page, "history-search").fill(f"history on the {viewport}")
    row_text = page.locator("#history-table").get_by_text(f"history on the {viewport}").locator("visible=true").first
    check(row_text).to_be_visible()
    widths = page.evaluate(
        "() => [...document.querySelectorAll('#history-table th')]"
        ".filter(th => th.offsetParent !== null).map(th => th.getBoundingClientRect().width)"
    )
    table_right = page.evaluate("() => document.querySelector('#history-table').getBoundingClientRect().right")
    if viewport == "phone":  # four columns that fit the screen, none squeezed to a letter per line
        assert len(widths) == 4 and min(widths) >= 50, widths
    else:
        assert len(widths) == 6, widths
    assert table_right <= page.viewport_size["width"]
    screenshot(page, f"journey-history-{viewport}")

    row_text.click()
    check(group(page, "history-detail")).to_be_visible()
    page.locator("#history-delete").click()
    check(group(page, "history-confirm")).to_contain_text("Delete this take?")
    page.locator("#history-keep").click()
    check(group(page, "history-confirm")).to_be_hidden()
    assert studio.get_generation(record.id)  # asking deleted nothing
    page.locator("#history-delete").click()
    page.locator("#history-confirm-delete").click()
    check(page.locator("#history-empty")).to_contain_text("No takes match this search")
    assert record.id not in [r.id for r in studio.list_history(limit=50)["items"]]


# ---- transcribe, models, the way in for programs -------------------------------------------------
def test_transcribe_refusal_clears_the_old_result(page: Any, jfk_path: Path, tmp_path: Path, viewport: str) -> None:
    check = expect()
    open_tab(page, "Transcribe")
    page.locator("#transcribe-audio input[type=file]").set_input_files(str(jfk_path))
    check(page.locator("#transcribe-audio audio, #transcribe-audio [data-testid=waveform-x]").first).to_be_attached()
    page.locator("#transcribe-button").click()
    check(page.locator("#transcribe-text textarea")).to_have_value(re.compile("ask not", re.I))

    page.locator("#transcribe-audio").get_by_label("Clear").click()
    page.locator("#transcribe-button").click()  # nothing chosen
    check(toast(page, "warning", "Choose or record")).to_be_visible()
    check(page.locator("#transcribe-text textarea")).to_have_value("")  # no stale transcript beside it
    check(page.locator("#transcribe-info")).to_contain_text("Not transcribed: Choose or record")
    check(error_badges(page)).to_have_count(0)
    assert "/" not in page.locator("#transcribe-info").inner_text()  # never a server path
    screenshot(page, f"journey-transcribe-refused-{viewport}")


def test_models_picker_shows_the_loaded_size(page: Any, studio: Studio, viewport: str) -> None:
    check = expect()
    open_tab(page, "Models")
    page.locator("#models-size").get_by_text("1.7B", exact=True).click()
    page.locator("#models-load-tts").click()
    check(page.locator("#models-tts")).to_contain_text("1.7B")
    page.reload()
    open_tab(page, "Models")
    check(page.locator("#models-size input[value='1.7B']")).to_be_checked()  # not the first size
    assert studio.model_status()["tts"]["size"] == "1.7B"
    studio.unload_model("tts")


def test_the_rest_api_is_linked_and_its_docs_work_offline(page: Any, viewport: str) -> None:
    check = expect()
    link = page.locator("#vb-footer a", has_text="REST API")
    check(link).to_be_visible()
    check(page.locator("#vb-footer")).to_contain_text("/v1/audio/speech")
    with page.context.expect_page() as opened:
        link.click()
    docs = opened.value
    check(docs.get_by_text("/v1/audio/speech").first).to_be_visible()
    screenshot(docs, f"journey-api-docs-{viewport}")
