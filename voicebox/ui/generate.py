"""Generate tab: pick a voice, type text, hear it while it is made, keep the take.

The handler streams audio into a ``gr.Audio(streaming=True)`` player as chunks are decoded and,
when the take is saved to history, shows the complete WAV (a private temp copy, never a path in
the data directory) with its seed, duration, timings and whether the voice came from the cache.
Cancel sets the job's ``threading.Event`` (the engine stops at the next chunk) and also cancels
the Gradio event, so the page reacts at once even mid-chunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import gradio as gr

from .. import audio
from ..engines.params import DEFAULT_PRESET, PRESETS, SEED_MAX, TEXT_MAX_CHARS
from ..errors import Cancelled, InvalidInput
from .common import (
    LIGHT_QUEUE,
    MODEL_QUEUE,
    UIContext,
    escape,
    facts_html,
    fmt_seconds,
    guarded,
    safe_filename,
    ui_event,
)
from .jobs import Audio, Finished, GenerationJobs, Progress

#: Dropdown value meaning "use the profile's own language".
PROFILE_LANGUAGE = "profile"
EXAMPLES_FILE = Path(__file__).resolve().parents[2] / "assets" / "examples.txt"
NO_PROFILES = (
    "**No voice profiles yet.** Create one on the **Profiles** tab and add a sample of the voice; "
    "it will appear here."
)

STAGE_LABELS = {
    "loading model": "Loading the model…",
    "building voice": "Building the voice…",
    "saving": "Saving the take…",
}


def stage_label(stage: str, done: int, total: int) -> str:
    """Human words for an engine stage; ``generating`` becomes "Generating chunk i of N…"."""
    if stage == "generating":
        return f"Generating chunk {min(done + 1, total)} of {total}…"
    return STAGE_LABELS.get(stage, stage.capitalize() + "…")


def stage_fraction(stage: str, done: int, total: int) -> float:
    """Overall progress 0..1: loading and voice take the first 10 %, chunks the next 85 %."""
    if stage == "loading model":
        return 0.02
    if stage == "building voice":
        return 0.08
    if stage == "saving":
        return 0.97
    return 0.1 + 0.85 * (done / max(total, 1))


def char_count_js() -> str:
    """Client-side character counter (no server round trip per keystroke)."""
    return (
        "(t) => { const n = (t || '').length; "
        f"const over = n > {TEXT_MAX_CHARS}; "
        f"return (over ? '⚠️ ' : '') + n.toLocaleString('en-US') + ' / {TEXT_MAX_CHARS:,} characters'; }}"
    )


def load_examples(path: Path = EXAMPLES_FILE) -> list[str]:
    """Example texts: paragraphs of ``assets/examples.txt`` (blank-line separated)."""
    try:
        content = path.read_text(encoding="utf-8")
    except OSError:
        return []
    return [
        " ".join(p.split()) for p in content.split("\n\n") if p.strip() and not p.lstrip().startswith("#")
    ]


def details_html(record: dict[str, Any]) -> str:
    """The facts about a take, as a compact grid (numbers only come from the record)."""
    timings = record.get("timings") or {}
    cache = "from cache" if record.get("cache_hit") else "built now"
    cells = [
        ("Seed", str(record.get("seed", ""))),
        ("Duration", fmt_seconds(record.get("duration"))),
        ("Voice", cache),
        ("Model", f"{record.get('size', '')} · {record.get('mode', '')}"),
        ("Language", str(record.get("language", ""))),
        ("Chunks", str(record.get("chunks", ""))),
    ]
    timing_names = [
        ("prompt", "voice"),
        ("first_audio", "first audio"),
        ("generate", "generate"),
        ("decode", "decode"),
        ("total", "total"),
    ]
    timing_text = " · ".join(
        f"{label} {float(timings[key]):.2f} s" for key, label in timing_names if key in timings
    )
    return f'{facts_html(cells)}<p class="vb-timings">Timings: {escape(timing_text)}</p>'


def download_name(record: dict[str, Any]) -> str:
    """``voicebox-<profile>-<YYYYmmdd-HHMMSS>.wav``: a name that says what the file is."""
    stamp = record.get("created_at", "")
    try:
        stamp = datetime.fromisoformat(stamp).astimezone().strftime("%Y%m%d-%H%M%S")
    except ValueError:
        stamp = record.get("id", "take")[:8]
    return safe_filename(f"voicebox-{record.get('profile_name', 'voice')}-{stamp}.wav")


def status_html(text: str, kind: str = "info") -> str:
    return f'<div class="vb-status vb-status-{kind}">{escape(text)}</div>'


def generation_options(
    language: str | None,
    size: str | None,
    preset: str | None,
    seed: Any,
    temperature: Any,
    top_k: Any,
    top_p: Any,
    repetition_penalty: Any,
) -> dict[str, Any]:
    """UI values -> ``Studio.generate*`` keyword options (blank seed means random)."""
    if seed in (None, ""):
        seed_value = None
    else:
        try:
            seed_value = int(float(seed))
        except (TypeError, ValueError):
            raise InvalidInput(f"The seed must be a whole number from 0 to {SEED_MAX}.") from None
    return {
        "language": None if language in (None, "", PROFILE_LANGUAGE) else language,
        "model_size": size or None,
        "preset": preset or DEFAULT_PRESET,
        "seed": seed_value,
        "temperature": temperature,
        "top_k": top_k,
        "top_p": top_p,
        "repetition_penalty": repetition_penalty,
    }


class GenerateHandlers:
    """Callbacks of the Generate tab; each one is a thin call into ``Studio``."""

    def __init__(self, ctx: UIContext, jobs: GenerationJobs | None = None) -> None:
        self.ctx = ctx
        self.jobs = jobs or GenerationJobs()

    @guarded
    def refresh(self, current: str | None) -> tuple[Any, Any]:
        """Profile choices (keeping the current pick when it still exists) and the empty state."""
        choices = self.ctx.profile_choices()
        ids = [value for _, value in choices]
        value = current if current in ids else (ids[0] if ids else None)
        return gr.update(choices=choices, value=value), gr.update(visible=not choices)

    @guarded
    def apply_preset(self, preset: str) -> tuple[Any, Any, Any, Any]:
        """Move the Advanced sliders to the preset's values."""
        values = PRESETS.get(preset) or PRESETS[DEFAULT_PRESET]
        return (values["temperature"], values["top_k"], values["top_p"], values["repetition_penalty"])

    @guarded
    def generate(
        self,
        profile_id: str | None,
        text: str,
        language: str | None,
        size: str | None,
        preset: str | None,
        seed: Any,
        temperature: Any,
        top_k: Any,
        top_p: Any,
        repetition_penalty: Any,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio injects the tracker through this default
    ) -> Iterator[tuple[Any, Any, Any, Any]]:
        """Stream the take; yields (live audio, final WAV path, details, status)."""
        if not profile_id:
            raise InvalidInput("Choose a voice profile first (create one on the Profiles tab).")
        options = generation_options(
            language, size, preset, seed, temperature, top_k, top_p, repetition_penalty
        )
        key = getattr(request, "session_hash", None) or "local"
        yield None, None, "", status_html("Queued — starting…")
        record: dict[str, Any] | None = None
        try:
            for message in self.jobs.run(key, self.ctx.studio, profile_id, text, **options):
                if isinstance(message, Progress):
                    label = stage_label(message.stage, message.done, message.total)
                    progress(stage_fraction(message.stage, message.done, message.total), desc=label)
                    yield gr.skip(), gr.skip(), gr.skip(), status_html(label)
                elif isinstance(message, Audio):
                    yield audio.wav_bytes(message.samples), gr.skip(), gr.skip(), gr.skip()
                elif isinstance(message, Finished):
                    record = message.record
        except Cancelled:
            gr.Info("Generation cancelled; nothing was saved.")
            yield gr.skip(), gr.skip(), gr.skip(), status_html("Cancelled — nothing was saved.", "warn")
            return
        if record is None:  # the service always ends with a record; be explicit if it did not
            raise RuntimeError("generation ended without a saved record")
        final = self.ctx.temp.copy(self.ctx.studio.generation_path(record["id"]), download_name(record))
        if record.get("status") != "ok" and record.get("message"):
            gr.Warning(escape(record["message"]))
        done = f"Saved to History · {fmt_seconds(record.get('duration'))} of audio"
        yield gr.skip(), final, details_html(record), status_html(done, "ok")

    @guarded
    def cancel(self, request: gr.Request) -> tuple[Any, Any, Any]:
        """Stop this session's running take; restores the buttons."""
        key = getattr(request, "session_hash", None) or "local"
        stopped = self.jobs.cancel(key)
        text = "Cancelled — the take was stopped and not saved." if stopped else "Cancelled."
        return status_html(text, "warn"), gr.update(visible=True), gr.update(visible=False)


@dataclass
class GenerateTab:
    """Components other tabs fill in ("use these settings again")."""

    tab: gr.Tab
    profile: gr.Dropdown
    text: gr.Textbox
    language: gr.Dropdown
    size: gr.Radio
    preset: gr.Radio
    seed: gr.Number
    temperature: gr.Slider
    top_k: gr.Slider
    top_p: gr.Slider
    repetition_penalty: gr.Slider
    empty: gr.Markdown
    handlers: GenerateHandlers

    @property
    def settings_outputs(self) -> list[Any]:
        return [
            self.profile,
            self.text,
            self.language,
            self.size,
            self.preset,
            self.seed,
            self.temperature,
            self.top_k,
            self.top_p,
            self.repetition_penalty,
        ]


def build(ctx: UIContext, jobs: GenerationJobs | None = None) -> GenerateTab:
    """Lay out the Generate tab and wire its events."""
    h = GenerateHandlers(ctx, jobs)
    balanced = PRESETS[DEFAULT_PRESET]
    sizes = ctx.sizes()
    with gr.Tab("Generate", id="generate") as tab:
        empty = gr.Markdown(NO_PROFILES, visible=False, elem_classes="vb-empty")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                profile = gr.Dropdown(label="Voice profile", choices=[], value=None, elem_id="gen-profile")
                text = gr.Textbox(
                    label="Text to speak",
                    lines=6,
                    max_lines=20,
                    max_length=TEXT_MAX_CHARS,
                    placeholder="What the voice should say; long texts are split into sentences.",
                    elem_id="gen-text",
                )
                count = gr.Markdown(
                    f"0 / {TEXT_MAX_CHARS:,} characters", elem_classes="vb-count", elem_id="gen-count"
                )
                with gr.Row():
                    language = gr.Dropdown(
                        [("Profile's language", PROFILE_LANGUAGE), *[(n, n) for n in ctx.languages()]],
                        value=PROFILE_LANGUAGE,
                        label="Language",
                        elem_id="gen-language",
                    )
                    size = gr.Radio(
                        sizes,
                        value=sizes[0],
                        label="Model size",
                        elem_id="gen-size",
                        info="Larger sounds better; smaller is faster",
                    )
                preset = gr.Radio(
                    list(PRESETS),
                    value=DEFAULT_PRESET,
                    label="Preset",
                    elem_id="gen-preset",
                    info="Stable reads evenly, Expressive varies more; Advanced shows the values",
                )
                with gr.Accordion("Advanced", open=False, elem_id="gen-advanced"):
                    with gr.Row():
                        seed = gr.Number(
                            label="Seed",
                            value=None,
                            precision=0,
                            minimum=0,
                            maximum=SEED_MAX,
                            info="Blank = random; reuse a seed to repeat a take",
                            elem_id="gen-seed",
                        )
                        temperature = gr.Slider(
                            0.05, 2.0, value=balanced["temperature"], step=0.05, label="Temperature"
                        )
                    with gr.Row():
                        top_k = gr.Slider(1, 500, value=balanced["top_k"], step=1, label="Top-k")
                        top_p = gr.Slider(0.05, 1.0, value=balanced["top_p"], step=0.01, label="Top-p")
                        repetition_penalty = gr.Slider(
                            1.0,
                            2.0,
                            value=balanced["repetition_penalty"],
                            step=0.01,
                            label="Repetition penalty",
                        )
                with gr.Row():
                    generate_btn = gr.Button("Generate", variant="primary", size="lg", elem_id="gen-button")
                    cancel_btn = gr.Button(
                        "Cancel", variant="stop", size="lg", visible=False, elem_id="gen-cancel"
                    )
            with gr.Column(scale=2):
                status = gr.HTML(
                    status_html("Ready. Pick a voice, type some text and press Generate."),
                    elem_id="gen-status",
                )
                live = gr.Audio(
                    label="Live preview",
                    streaming=True,
                    autoplay=True,
                    interactive=False,
                    elem_id="gen-live",
                    buttons=[],
                )
                result = gr.Audio(
                    label="Result",
                    type="filepath",
                    interactive=False,
                    elem_id="gen-result",
                    buttons=["download"],
                )
                details = gr.HTML(elem_id="gen-details")
                examples = load_examples()
                if examples:
                    gr.Examples(
                        [[e] for e in examples],
                        inputs=[text],
                        label="Try an example",
                        api_name="ui_example",
                        api_visibility="private",
                    )

    text.change(None, inputs=text, outputs=count, js=char_count_js(), **ui_event("char_count"))
    preset.input(
        h.apply_preset,
        inputs=preset,
        outputs=[temperature, top_k, top_p, repetition_penalty],
        **ui_event("apply_preset"),
        **LIGHT_QUEUE,
    )
    tab.select(
        h.refresh, inputs=profile, outputs=[profile, empty], **ui_event("generate_refresh"), **LIGHT_QUEUE
    )

    show_cancel = generate_btn.click(
        lambda: (gr.update(visible=False), gr.update(visible=True)),
        outputs=[generate_btn, cancel_btn],
        **ui_event("generate_start"),
        **LIGHT_QUEUE,
    )
    running = show_cancel.then(
        h.generate,
        inputs=[profile, text, language, size, preset, seed, temperature, top_k, top_p, repetition_penalty],
        outputs=[live, result, details, status],
        show_progress_on=[status],
        **ui_event("generate"),
        **MODEL_QUEUE,
    )
    running.then(
        lambda: (gr.update(visible=True), gr.update(visible=False)),
        outputs=[generate_btn, cancel_btn],
        **ui_event("generate_end"),
        **LIGHT_QUEUE,
    )
    cancel_btn.click(
        h.cancel,
        outputs=[status, generate_btn, cancel_btn],
        cancels=[running],
        **ui_event("generate_cancel"),
        **LIGHT_QUEUE,
    )

    return GenerateTab(
        tab,
        profile,
        text,
        language,
        size,
        preset,
        seed,
        temperature,
        top_k,
        top_p,
        repetition_penalty,
        empty,
        h,
    )
