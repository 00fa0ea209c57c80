"""Handler-level tests of the Gradio UI: the callbacks called directly, no browser, no server.

The studio is real (tiny random Qwen3-TTS checkpoint, real tiny.en Whisper), so these check the
UI's contract with the service layer: what each tab shows, which errors become which toasts,
that audio is handed out as private temp copies, and how the app is wired (queue, API names).
"""

from __future__ import annotations

import logging
import stat
import threading
import time
import types
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import gradio as gr
import numpy as np
import pytest

from tests.support.studio import studio_settings
from voicebox.config import Settings
from voicebox.errors import Cancelled, Conflict, NotFound
from voicebox.jobs import Job, JobAudio, JobDone, JobProgress
from voicebox.records import Generation, GenerationRequest, Profile
from voicebox.services import Studio
from voicebox.ui import QUEUE_MAX_SIZE, build_ui, header_html, notices_of
from voicebox.ui import history as history_ui
from voicebox.ui.api import ENDPOINTS
from voicebox.ui.common import GENERIC_ERROR, TempAudio, UIContext, guarded, to_gr_error
from voicebox.ui.generate import GenerateHandlers, stage_label
from voicebox.ui.history import HistoryHandlers
from voicebox.ui.jobs import GenerationJobs
from voicebox.ui.models import ModelHandlers
from voicebox.ui.profiles import NO_MATCH, NO_PROFILES, ProfileHandlers
from voicebox.ui.transcribe import TranscribeHandlers

REQUEST = types.SimpleNamespace(session_hash="handler-tests")


def no_progress(*_args: Any, **_kwargs: Any) -> None:
    """Stands in for gr.Progress outside a running event."""


@pytest.fixture(scope="module")
def ui_settings(
    tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path, whisper_tiny_path: str
) -> Settings:
    data = tmp_path_factory.mktemp("ui-handlers") / "data"
    return studio_settings(data, tiny_checkpoint, whisper_tiny_path)


@pytest.fixture(scope="module")
def ctx(
    ui_settings: Settings, tmp_path_factory: pytest.TempPathFactory, shared_tts: Any, shared_asr: Any
) -> UIContext:
    temp = TempAudio(tmp_path_factory.mktemp("ui-temp") / "copies")
    return UIContext(Studio(ui_settings, tts=shared_tts, asr=shared_asr), ui_settings, temp)


@pytest.fixture(scope="module")
def voiced_profile(ctx: UIContext, jfk_path: Path) -> Profile:
    """A profile with jfk.flac as its sample (added through the upload handler)."""
    handlers = ProfileHandlers(ctx)
    handlers.create("Kennedy", "35th president", "English", "")
    profile = next(p for p in ctx.studio.list_profiles()["items"] if p.name == "Kennedy")
    handlers.add_uploads(profile.id, [str(jfk_path)], 0, "")
    return ctx.studio.get_profile(profile.id)


def run_generate(
    ctx: UIContext, profile_id: str, text: str, seed: Any = 7, progress: Any = no_progress
) -> list[tuple]:
    handlers = GenerateHandlers(ctx)
    return list(
        handlers.generate(
            "", profile_id, text, "profile", "0.6B", "Balanced", seed, 0.9, 50, 1.0, 1.05, REQUEST, progress
        )
    )


def refused(handler: Any, *args: Any) -> str:
    """Call a UI handler that must refuse: it shows the message as a toast (a warning outside a
    running app) and returns one ``gr.skip()``, so every output, and the user's typing, stays."""
    with pytest.warns(UserWarning) as shown:
        result = handler(*args)
    assert result == gr.skip(), result
    return " ".join(str(w.message) for w in shown)


def is_inside(path: str | Path, folder: Path) -> bool:
    return Path(path).resolve().is_relative_to(folder.resolve())


# ---- errors and temp files ----------------------------------------------------------------------
def test_guarded_shows_user_errors_and_hides_internal_ones(caplog: pytest.LogCaptureFixture) -> None:
    @guarded
    def conflict() -> None:
        raise Conflict("A profile named '<b>Ann</b>' already exists; choose another name.")

    @guarded
    def crash() -> None:
        raise RuntimeError("secret detail at /srv/data/voicebox.json")

    @guarded
    def crash_later() -> Any:
        yield 1
        raise KeyError("internal")

    with pytest.raises(gr.Error) as user_error:
        conflict()
    assert "already exists" in user_error.value.message
    assert "<b>" not in user_error.value.message and "&lt;b&gt;" in user_error.value.message

    with caplog.at_level(logging.ERROR, logger="voicebox.ui"), pytest.raises(gr.Error) as internal:
        crash()
    assert internal.value.message == GENERIC_ERROR
    assert "secret" not in internal.value.message
    assert "secret detail" in caplog.text  # the details went to the server log

    generator = crash_later()
    assert next(generator) == 1
    with pytest.raises(gr.Error) as late:
        next(generator)
    assert late.value.message == GENERIC_ERROR


def test_temp_copies_are_private_and_pruned(tmp_path: Path) -> None:
    temp = TempAudio(tmp_path / "copies", max_age=60)
    source = tmp_path / "take.wav"
    source.write_bytes(b"RIFF....WAVE")
    copy = Path(temp.copy(source, "voicebox-Ann 1.wav"))
    assert copy.read_bytes() == source.read_bytes()
    assert copy.name == "voicebox-Ann-1.wav"
    assert stat.S_IMODE(temp.root.stat().st_mode) == 0o700
    assert stat.S_IMODE(copy.parent.stat().st_mode) == 0o700
    old = time.time() - 3600
    import os

    os.utime(copy.parent, (old, old))
    assert temp.prune(force=True) == 1
    assert not copy.exists()


def test_temp_copy_refuses_to_keep_path_components(tmp_path: Path) -> None:
    temp = TempAudio(tmp_path / "copies")
    source = tmp_path / "a.wav"
    source.write_bytes(b"x")
    copy = Path(temp.copy(source, "../../etc/passwd"))
    assert is_inside(copy, temp.root)


# ---- profiles ---------------------------------------------------------------------------------
def test_empty_state_then_create_search_and_duplicate(ctx: UIContext) -> None:
    handlers = ProfileHandlers(ctx)
    fresh = UIContext(ctx.studio, ctx.settings, ctx.temp)
    listing, empty = ProfileHandlers(fresh).refresh_list("no such profile", None)
    assert listing["visible"] is False and empty["visible"] is True
    assert empty["value"] == NO_MATCH

    out = handlers.create("Ada", "calm narrator", "English", "")
    profile_list, empty, selected, heading, name = out[:5]
    assert selected and name == "Ada" and "Ada" in heading
    assert any(label.startswith("Ada · 0 samples") for label, _ in profile_list["choices"])
    assert profile_list["value"] == selected
    assert empty["visible"] is False

    listing, _ = handlers.refresh_list("narrator", None)  # matches the description
    assert [label for label, _ in listing["choices"]] == ["Ada · 0 samples"]

    assert "already exists" in refused(handlers.create, "ada", "", "Auto", "")
    assert "Give the profile a name" in refused(handlers.create, "  ", "kept description", "Auto", "")
    ada = ctx.studio.find_profile("Ada")
    other = handlers.create("Bea", "", "Auto", "")[2]
    assert "already exists" in refused(handlers.save, other, "Ada", "typed", "Auto", "")
    assert ctx.studio.get_profile(other).name == "Bea"  # nothing was stored
    assert ctx.studio.get_profile(ada.id).name == "Ada"


def test_empty_state_wording_when_there_are_no_profiles(
    tmp_path: Path, ui_settings: Settings, shared_tts: Any, shared_asr: Any
) -> None:
    settings = replace(ui_settings, data_dir=tmp_path / "empty")
    studio = Studio(settings, tts=shared_tts, asr=shared_asr)
    listing, empty = ProfileHandlers(UIContext(studio, settings, TempAudio(tmp_path / "t"))).refresh_list(
        "", None
    )
    assert empty["value"] == NO_PROFILES
    assert "No profiles yet — create one to start" in NO_PROFILES


def test_upload_transcribes_and_sample_editing(ctx: UIContext, voiced_profile: Profile) -> None:
    sample = voiced_profile.samples[0]
    assert "fellow americans" in sample.reference_text.lower()
    handlers = ProfileHandlers(ctx)

    player = handlers.sample_audio(sample, 1)
    assert player is not None and is_inside(player, ctx.temp.root)
    assert not is_inside(player, ctx.settings.data_dir)
    assert Path(player).read_bytes() == ctx.studio.sample_path(sample.id).read_bytes()

    handlers.save_transcript(sample.id, "Ask not what your country can do for you.")
    assert ctx.studio.get_profile(voiced_profile.id).samples[0].reference_text.startswith("Ask not")


def test_bad_upload_is_an_error_toast_naming_the_file(ctx: UIContext, tmp_path: Path) -> None:
    handlers = ProfileHandlers(ctx)
    profile_id = handlers.create("Broken uploads", "", "Auto", "")[2]
    bad = tmp_path / "notes.wav"
    bad.write_bytes(b"definitely not audio" * 20)
    with pytest.warns(UserWarning) as shown:
        status, *unchanged = handlers.add_uploads(profile_id, [str(bad)], 0, "")
    message = str(shown[0].message)
    assert message.startswith("notes.wav: ") and "audio" in message.lower()
    assert status.startswith("No sample was added")
    assert unchanged == [gr.skip()] * 3  # version, list and empty state stay as they were
    assert ctx.studio.list_samples(profile_id) == []


def test_mixed_upload_keeps_good_files_and_warns_about_bad(
    ctx: UIContext, tmp_path: Path, espeak_wav: Path
) -> None:
    handlers = ProfileHandlers(ctx)
    profile_id = handlers.create("Mixed uploads", "", "Auto", "")[2]
    silent = tmp_path / "silence.wav"
    from voicebox import audio

    silent.write_bytes(audio.wav_bytes(np.zeros(48000, dtype=np.float32)))
    with pytest.warns(UserWarning, match="silence.wav: The recording is silent"):
        status, version, listing, _ = handlers.add_uploads(profile_id, [str(espeak_wav), str(silent)], 3, "")
    assert version == 4
    assert "Added 1 sample" in status and "1 file could not be used" in status
    assert len(ctx.studio.list_samples(profile_id)) == 1
    assert any("1 sample" in label for label, _ in listing["choices"])


def test_oversized_upload_is_refused(ctx: UIContext, jfk_path: Path) -> None:
    small = UIContext(ctx.studio, replace(ctx.settings, max_upload_mb=0.01), ctx.temp)
    handlers = ProfileHandlers(small)
    profile_id = handlers.create("Too big", "", "Auto", "")[2]
    with pytest.warns(UserWarning, match="limit"):
        status, *_ = handlers.add_uploads(profile_id, [str(jfk_path)], 0, "")
    assert status.startswith("No sample was added")
    assert "limit" in refused(handlers.add_recording, profile_id, str(jfk_path), 0, "")


def test_recording_needs_a_recording(ctx: UIContext) -> None:
    handlers = ProfileHandlers(ctx)
    profile_id = handlers.create("Silent mic", "", "Auto", "")[2]
    assert "recording did not arrive" in refused(handlers.add_recording, profile_id, None, 0, "")


def test_delete_profile_asks_first_and_history_keeps_the_name(ctx: UIContext, espeak_wav: Path) -> None:
    handlers = ProfileHandlers(ctx)
    profile_id = handlers.create("Temporary voice", "", "Auto", "")[2]
    handlers.add_uploads(profile_id, [str(espeak_wav)], 0, "")
    record = ctx.studio.generate(GenerationRequest(profile_id, "One take before deletion.", seed=1))

    confirm_row, text = handlers.ask_delete(profile_id)
    assert confirm_row["visible"] is True
    assert "1 sample" in text and "History keep" in text
    assert ctx.studio.get_profile(profile_id)  # asking deleted nothing

    listing, _, selected, heading, *_ = handlers.confirm_delete(profile_id, "")
    assert selected == "" and "New profile" in heading
    assert all(value != profile_id for _, value in listing["choices"])
    with pytest.raises(NotFound):
        ctx.studio.get_profile(profile_id)
    assert ctx.studio.get_generation(record.id).profile_name == "Temporary voice"


# ---- generate ---------------------------------------------------------------------------------
def test_generate_streams_then_shows_the_saved_take(ctx: UIContext, voiced_profile: Profile) -> None:
    stages: list[str] = []
    outputs = run_generate(
        ctx,
        voiced_profile.id,
        "Hello there. This is a streaming test.",
        seed=42,
        progress=lambda fraction, desc="": stages.append(desc),
    )
    streamed = [live for live, *_ in outputs if isinstance(live, bytes)]
    assert streamed and all(chunk[:4] == b"RIFF" for chunk in streamed)  # int16 WAV chunks, not floats
    _, final, details, status, generate_button, cancel_button = outputs[-1]
    assert generate_button["visible"] is True and cancel_button["visible"] is False
    assert is_inside(final, ctx.temp.root) and not is_inside(final, ctx.settings.data_dir)
    assert Path(final).name.startswith("voicebox-Kennedy-") and final.endswith(".wav")
    assert "42" in details and "Timings" in details
    assert "Saved to History" in status
    assert "Generating chunk 1 of 1…" in stages and "Loading the model…" in stages
    latest = ctx.studio.list_history(limit=1)["items"][0]
    assert (
        latest.seed == 42
        and Path(final).read_bytes() == ctx.studio.generation_path(latest.id).read_bytes()
    )


def test_generate_validation_errors_are_toasts(ctx: UIContext, voiced_profile: Profile) -> None:
    handlers = GenerateHandlers(ctx)
    empty = ctx.studio.create_profile("No samples yet")

    def check(profile_id: str, text: str, seed: Any = 7) -> str:
        with pytest.raises(gr.Error) as refusal:
            handlers.check(profile_id, text, "profile", "0.6B", "Balanced", seed, 0.9, 50, 1.0, 1.05)
        return refusal.value.message

    assert "Choose a voice profile" in check("", "Hello")
    assert "Type some text" in check(voiced_profile.id, "   ")
    assert "seed" in check(voiced_profile.id, "Hello", seed="abc")
    assert "seed" in check(voiced_profile.id, "Hello", seed=-1)
    assert "no samples yet" in check(empty.id, "Hello")
    assert "5,000" in check(voiced_profile.id, "word " * 1200)
    assert handlers.check(voiced_profile.id, "Hello", "profile", "0.6B", "Balanced", 7, 0.9, 50, 1.0, 1.05) is None


def test_generate_ends_with_the_generate_button_back_whatever_happens(
    ctx: UIContext, voiced_profile: Profile
) -> None:
    """The generate event never raises: a refusal reaching it still restores the buttons."""
    before = ctx.studio.history_stats()["count"]
    for profile_id, text, seed, reason in (
        ("", "Hello", 7, "Choose a voice profile"),
        (voiced_profile.id, "   ", 7, "Type some text"),
        (voiced_profile.id, "Hello", "abc", "seed"),
    ):
        with pytest.warns(UserWarning, match=reason):
            outputs = run_generate(ctx, profile_id, text, seed=seed)
        *_, status, generate_button, cancel_button = outputs[-1]
        assert "Not generated: " in status and "Queued" not in status
        assert generate_button["visible"] is True and cancel_button["visible"] is False
    assert ctx.studio.history_stats()["count"] == before


def test_start_says_where_the_take_waits() -> None:
    from voicebox.ui.generate import waiting_label

    assert waiting_label(0) == "Starting…"
    assert waiting_label(1) == "Waiting for another take to finish — you are 1st in line."
    assert waiting_label(2).endswith("you are 2nd in line.")
    assert waiting_label(11).endswith("you are 11th in line.")


def test_a_take_cancelled_while_waiting_never_starts(ctx: UIContext, voiced_profile: Profile) -> None:
    handlers = GenerateHandlers(ctx)
    ticket, generate_button, cancel_button, status, *_ = handlers.start(REQUEST)
    assert generate_button["visible"] is False and cancel_button["visible"] is True
    assert "Starting" in status
    status, generate_button, cancel_button, _ = handlers.cancel(REQUEST)
    assert "Cancelled" in status and generate_button["visible"] is True and cancel_button["visible"] is False
    before = ctx.studio.history_stats()["count"]
    outputs = list(
        handlers.generate(
            ticket, voiced_profile.id, "Never made.", "profile", "0.6B", "Balanced", 1, 0.9, 50, 1.0, 1.05,
            REQUEST, no_progress,
        )
    )
    assert len(outputs) == 1 and "Cancelled — nothing was saved." in outputs[0][3]
    assert ctx.studio.history_stats()["count"] == before


def test_an_older_take_leaves_the_page_to_the_newer_one(ctx: UIContext, voiced_profile: Profile) -> None:
    handlers = GenerateHandlers(ctx)
    old_ticket = handlers.start(REQUEST)[0]
    handlers.start(REQUEST)  # pressed Generate again (after Cancel): the old event must not touch the page
    outputs = list(
        handlers.generate(
            old_ticket, voiced_profile.id, "Old.", "profile", "0.6B", "Balanced", 1, 0.9, 50, 1.0, 1.05,
            REQUEST, no_progress,
        )
    )
    assert outputs == [gr.skip()]
    handlers.cancel(REQUEST)


def test_long_text_is_split_not_cut(ctx: UIContext) -> None:
    handlers = GenerateHandlers(ctx)
    paragraph = "This sentence is here to make the text long enough. " * 40  # about 2,100 characters
    text = "\n\n".join([paragraph.strip()] * 3)  # about 6,300 characters
    assert handlers.length_notice(text)["visible"] is True
    assert handlers.length_notice("short")["visible"] is False
    first, waiting, notice, waiting_box = handlers.split(text, "")
    assert len(first) <= 5000 and first.endswith(".")
    assert first + "\n\n" + waiting == text.strip()  # nothing lost, paragraphs kept
    assert notice["visible"] is False and waiting_box["visible"] is True
    moved, rest, box = handlers.next_part(waiting)
    assert moved == waiting and rest == "" and box["visible"] is False
    assert "Nothing is waiting" in refused(handlers.next_part, "")


def test_stage_labels() -> None:
    assert stage_label("generating", 2, 5) == "Generating chunk 3 of 5…"
    assert stage_label("building voice", 0, 5) == "Building the voice…"


class _WaitingStudio:
    """Starts a job that streams one piece, then waits for the cancel event like the engine
    does between chunks, holding its lock meanwhile."""

    def __init__(self) -> None:
        self.lock = threading.RLock()

    def start_generation(self, request: GenerationRequest, stream: bool = True, cancel: Any = None,
                         owner: str = "") -> Job:
        def work(cancelled: threading.Event) -> Iterator[Any]:
            with self.lock:  # held by the job's own thread, like the model lock
                yield JobProgress("generating", 0, 3)
                yield JobAudio(np.full(2400, 0.1, dtype=np.float32))
                if not cancelled.wait(30):
                    raise AssertionError("cancel never arrived")
                raise Cancelled("Generation cancelled.")

        return Job(work, cancel)


def test_cancel_stops_the_running_take(ctx: UIContext) -> None:
    stub = _WaitingStudio()
    handlers = GenerateHandlers(UIContext(stub, ctx.settings, ctx.temp))
    run = handlers.generate(
        "", "p", "text", "profile", "0.6B", "Balanced", None, 0.9, 50, 1.0, 1.05, REQUEST, no_progress
    )
    outputs = []
    for output in run:
        outputs.append(output)
        if isinstance(output[0], bytes):
            status, generate_button, cancel_button, live = handlers.cancel(REQUEST)
            assert "stopped and not saved" in status
            assert live == {"__type__": "update", "value": None, "visible": False}  # stopped and hidden
            assert generate_button["visible"] is True and cancel_button["visible"] is False
    assert "Cancelled" in outputs[-1][3]
    assert not handlers.jobs.is_running(REQUEST.session_hash)
    assert stub.lock.acquire(blocking=False)  # released by the producer thread
    stub.lock.release()
    live = handlers.start(REQUEST)[4]  # the next take brings the hidden player back, empty
    assert live == {"__type__": "update", "value": None, "visible": True}


def test_jobs_survive_being_advanced_from_different_threads() -> None:
    """Gradio may advance a generator from a different pool thread each time: the take's lock
    must still be acquired and released by one thread (the job's own)."""

    class Studio2:
        lock = threading.RLock()

        def start_generation(self, request: GenerationRequest, stream: bool = True, cancel: Any = None) -> Job:
            def work(cancelled: threading.Event) -> Iterator[Any]:
                with self.lock:
                    for _ in range(3):
                        yield JobAudio(np.zeros(10, dtype=np.float32))
                    yield JobDone(done_record)

            return Job(work, cancel)

    done_record = Generation(id="x" * 32, profile_id="p", profile_name="P", text="t", file="f.wav", language="Auto",
                             model="m", size="0.6B", mode="icl", seed=1, duration=0.0)
    jobs = GenerationJobs()
    iterator = jobs.run("k", Studio2(), GenerationRequest("p", "t"))
    received: list[Any] = []

    def step() -> None:
        received.append(next(iterator, None))

    for _ in range(5):
        worker = threading.Thread(target=step)
        worker.start()
        worker.join(10)
    assert [type(m) for m in received[:4]] == [JobAudio, JobAudio, JobAudio, JobDone]
    assert received[4] is None
    assert Studio2.lock.acquire(blocking=False)
    Studio2.lock.release()


# ---- history ----------------------------------------------------------------------------------
def test_history_table_search_paging_open_reuse_delete(
    ctx: UIContext, voiced_profile: Profile, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = ctx.studio.generate(GenerationRequest(voiced_profile.id, "Alpha history line.", seed=11, preset="Stable"))
    second = ctx.studio.generate(GenerationRequest(voiced_profile.id, "Beta history line.", seed=12))
    handlers = HistoryHandlers(ctx)

    table, ids, page, label, prev, nxt, empty, stats, choices = handlers.refresh("history line", "", 0)
    assert ids == [second.id, first.id]  # newest first
    assert table["value"][0][1] == "Kennedy" and "Beta history line." in table["value"][0][2]
    assert empty["visible"] is False
    assert "Takes" in stats and "Kennedy" in stats
    assert ("Kennedy", voiced_profile.id) in choices["choices"]

    monkeypatch.setattr(history_ui, "PAGE_SIZE", 1)
    _, ids, page, label, prev, nxt, *_ = handlers.refresh("history line", voiced_profile.id, 1)
    assert ids == [first.id] and page == 1 and label.startswith("Page 2 of 2")
    assert prev["interactive"] is True and nxt["interactive"] is False
    monkeypatch.undo()

    _, ids, *_rest = handlers.refresh("no such words", "", 0)
    assert ids == [] and _rest[4]["value"] == history_ui.NO_MATCH

    selected, detail, player, info, download, confirm = handlers.open(first.id)
    assert confirm["visible"] is False
    assert selected == first.id and detail["visible"] is True
    assert is_inside(player, ctx.temp.root) and download["value"] == player
    assert "Alpha history line." in info

    reused = handlers.reuse(first.id, None)
    assert reused[0]["selected"] == "generate"
    assert reused[1]["value"] == voiced_profile.id
    assert reused[2] == "Alpha history line."
    assert reused[5]["value"] == "Stable" and reused[6] == "11"
    assert reused[7] == pytest.approx(0.6)

    assert handlers.delete(first.id)[0] == ""
    with pytest.raises(NotFound):
        ctx.studio.get_generation(first.id)


def test_history_select_ignores_clicks_outside_rows(ctx: UIContext) -> None:
    event = types.SimpleNamespace(index=[5, 0])
    selected, detail, *_ = HistoryHandlers(ctx).select(["only-one"], event)
    assert selected == "" and detail["visible"] is False


# ---- transcribe and models ----------------------------------------------------------------------
def test_transcribe_gives_text_language_and_segments(ctx: UIContext, jfk_path: Path) -> None:
    text, info, segments = TranscribeHandlers(ctx).transcribe(str(jfk_path), "auto")
    assert "ask not what your country" in text.lower()
    assert "English" in info
    assert segments and float(segments[0][0]) == pytest.approx(0.0, abs=1.0)
    assert float(segments[-1][1]) > float(segments[0][0])
    with pytest.warns(UserWarning, match="Choose or record"):
        text, info, segments = TranscribeHandlers(ctx).transcribe(None, "auto")
    assert text == "" and segments == []  # the last transcript is not left beside the refusal
    assert "Not transcribed: Choose or record" in info


def test_models_load_unload_and_cache(ctx: UIContext) -> None:
    handlers = ModelHandlers(ctx)
    tts, whisper, cache, size, variants = handlers.load_tts("0.6B")
    # the other families are listed, off or with their checkpoint and whether they are in memory
    assert "Voice design" in variants and "Built-in voices" in variants and "Loaded" not in variants
    assert size["value"] == "0.6B"  # the picker shows what is loaded
    assert "Loaded" in tts and "0.6B" in tts and "cpu" in tts
    loop = ctx.studio.tts.status()["linear_precision"]
    assert "Decode loop" in tts and f"voicebox, {loop} linear layers" in tts  # no CUDA here: the loop
    assert "PyTorch (qwen-tts)" in tts  # which engine speaks, why, and how its precision was chosen
    assert "auto: " in tts and "too small to time" in tts and "/" + "tmp" not in tts
    tts, *_ = handlers.unload_tts()
    assert "Not loaded" in tts
    _, whisper, *_ = handlers.load_whisper()
    assert "Loaded" in whisper
    _, whisper, *_ = handlers.unload_whisper()
    assert "Not loaded" in whisper
    _, _, cache, _, _ = handlers.clear_cache()
    assert "0 of" in cache and ctx.studio.tts.prompt_cache.stats()["disk_entries"] == 0
    assert "not available" in refused(handlers.load_tts, "9B")


# ---- the assembled app ------------------------------------------------------------------------
def test_app_wiring_queue_and_api_names(ctx: UIContext) -> None:
    demo = build_ui(ctx.studio, ctx.settings, ctx.temp)
    info = demo.get_api_info()
    assert set(info["named_endpoints"]) == {f"/{name}" for name in ENDPOINTS}
    assert info["named_endpoints"]["/generate"]["parameters"][0]["parameter_name"] == "profile_id"
    assert [p["parameter_name"] for p in info["named_endpoints"]["/create_profile"]["parameters"]] == [
        "name",
        "description",
        "language",
        "consent",
    ]

    assert demo.api_open is False
    assert demo._queue.max_size == QUEUE_MAX_SIZE
    by_name = {fn.api_name: fn for fn in demo.fns.values()}
    model_calls = [
        "generate",
        "transcribe",
        "add_sample",
        "ui_generate",
        "ui_transcribe",
        "ui_samples_upload",
        "ui_samples_record",
        "ui_models_load_tts",
        "ui_models_unload_tts",
        "ui_models_load_whisper",
    ]
    for name in model_calls:
        assert by_name[name].concurrency_id == "model", name
        assert by_name[name].concurrency_limit == 1, name
    assert all(fn.api_visibility == "private" for name, fn in by_name.items() if name.startswith("ui_"))

    tabs = next(block for block in demo.blocks.values() if isinstance(block, gr.Tabs))
    assert [child.label for child in tabs.children] == [
        "Profiles",
        "Generate",
        "History",
        "Projects",
        "Batch",
        "Transcribe",
        "Models",
    ]
    assert all(isinstance(child, gr.Tab) for child in tabs.children)  # a State here shifts tab order


def test_notices_become_a_warning_banner(ctx: UIContext) -> None:
    stub = types.SimpleNamespace(store=types.SimpleNamespace(recovered_from_corruption="DB moved aside <x>"))
    html = header_html(notices_of(stub))
    assert 'role="alert"' in html and "DB moved aside &lt;x&gt;" in html
    assert 'role="alert"' not in header_html(notices_of(types.SimpleNamespace(notices=[])))
    assert "Clone a voice" in header_html([])


def test_a_recovered_database_shows_a_banner_on_the_page(
    tmp_path: Path, ui_settings: Settings, shared_tts: Any, shared_asr: Any
) -> None:
    settings = replace(ui_settings, data_dir=tmp_path / "broken")
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "voicebox.json").write_text("{ this is not json")
    studio = Studio(settings, tts=shared_tts, asr=shared_asr)
    assert studio.store.recovered_from_corruption
    demo = build_ui(studio, settings, TempAudio(tmp_path / "t"))
    header = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "vb-header")
    assert 'role="alert"' in header.value and "moved aside" in header.value


def test_to_gr_error_keeps_existing_gr_errors() -> None:
    original = gr.Error("as is")
    assert to_gr_error(original) is original


def test_messages_never_show_server_paths() -> None:
    from voicebox.errors import InvalidInput
    from voicebox.ui.common import warn, without_paths

    assert without_paths("Could not read '/tmp/gradio/ab12/take.wav' (damaged).") == "Could not read 'take.wav' (damaged)."
    assert without_paths("Whisper model directory /srv/models/whisper does not exist.") == (
        "Whisper model directory whisper does not exist."
    )
    assert without_paths("Use POST /v1/audio/speech or http://host/docs.") .count("/") >= 4  # routes and URLs stay
    with pytest.warns(UserWarning) as shown:
        warn(InvalidInput("Audio file not found: /var/tmp/voicebox-gradio-x/abc/clip.flac"))
    assert str(shown[0].message) == "Audio file not found: clip.flac"
    assert "/srv" not in to_gr_error(InvalidInput("bad /srv/data/voicebox.json")).message


def test_the_projects_timers_run_only_while_something_does(ctx: UIContext) -> None:
    """An idle Projects page asks the server nothing: the render and export timers start with a
    render or an export and stop on the tick that sees the end."""
    from voicebox.ui.project_blocks import BlockHandlers
    from voicebox.ui.project_export import ExportHandlers
    from voicebox.ui.projects import ProjectHandlers

    handlers = ProjectHandlers(ctx)
    project = ctx.studio.projects.create("Idle", blocks=[{"text": "One."}])
    opened = handlers.opened(project, BlockHandlers(ctx, handlers))
    assert isinstance(opened[-1], gr.Timer) and opened[-1].active is False  # nothing renders
    *_, render_timer = handlers.tick(project.id, 0)
    assert render_timer.active is False  # the tick that sees no render stops its timer
    *_, export_timer = ExportHandlers(ctx).poll(project.id, "")
    assert export_timer.active is False
