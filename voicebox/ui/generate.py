"""Generate tab: pick a voice, type text, hear it while it is made, keep the take.

The handler streams audio into a ``gr.Audio(streaming=True)`` player as chunks are decoded and,
when the take is saved to history, shows the complete WAV (a private temp copy, never a path in
the data directory) with its seed, duration, timings and whether the voice came from the cache.
Cancel sets the take's ticket (:class:`~voicebox.ui.jobs.GenerationJobs`): the engine stops at
the next frame, and the Generate button comes back at once. The words the tab shows about a take
live in :mod:`voicebox.ui.takes`. With quotas set (:mod:`voicebox.quotas`), a line under
Generate says what is left, and a take over a limit is refused by the check's toast.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from .. import audio
from ..engines.params import DEFAULT_PRESET, PRESETS, SEED_MAX, TEXT_MAX_CHARS
from ..errors import Cancelled
from ..quotas import page_caller
from ..records import Generation
from ..take_effects import played_file
from . import effects as effect_ui
from . import sentences as sentence_ui
from .common import (
    LIGHT_QUEUE,
    MODEL_QUEUE,
    UIContext,
    escape,
    fmt_seconds,
    guarded,
    refusing,
    ui_event,
    warn,
)
from .jobs import GenerationJobs, JobAudio, JobDone, JobProgress
from .long_text import LongTextHandlers
from .takes import (  # noqa: F401 - history.py, api.py and the tests import these from here
    CANCELLED,
    EXAMPLES_FILE,
    NO_PROFILES,
    PROFILE_LANGUAGE,
    READY,
    STAGE_LABELS,
    TOO_LONG,
    buttons,
    char_count_js,
    details_html,
    download_name,
    generation_request,
    jobs_ahead,
    load_examples,
    session_key,
    stage_fraction,
    stage_label,
    status_html,
    take_request,
    waiting_label,
)
from .voice_picker import style_box, style_for, voice_choices


class GenerateHandlers(LongTextHandlers):
    """Callbacks of the Generate tab; each one is a thin call into ``Studio``.

    A take goes through four events: :meth:`check` refuses a mistake at once (no outputs, so no
    "Error" badge can land on the form), :meth:`start` swaps Generate for Cancel and says where
    the take stands in the queue, :meth:`generate` streams it and always ends by putting the
    Generate button back with a truthful status, whatever happened, and :meth:`cancel` stops it.
    """

    def __init__(self, ctx: UIContext, jobs: GenerationJobs | None = None) -> None:
        self.ctx = ctx
        self.jobs = jobs or GenerationJobs()
        #: The take each browser session saved last: its sentences open below the result.
        self.last_takes: dict[str, str] = {}

    @refusing
    def refresh(self, current: str | None) -> tuple[Any, Any]:
        """Voice choices, built-in voices last (keeping the current pick when it still exists), and
        the empty state (no profile of one's own yet)."""
        choices, own = voice_choices(self.ctx)
        ids = [value for _, value in choices]
        value = current if current in ids else (ids[0] if own else None)  # a built-in voice only when picked
        return gr.update(choices=choices, value=value), gr.update(visible=not own)

    @refusing
    def apply_preset(self, preset: str) -> tuple[Any, Any, Any, Any]:
        """Move the Advanced sliders to the preset's values."""
        values = PRESETS.get(preset) or PRESETS[DEFAULT_PRESET]
        return (values["temperature"], values["top_k"], values["top_p"], values["repetition_penalty"])

    # ---- one take -----------------------------------------------------------------------------
    @guarded
    def check(
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
        request: gr.Request | None = None,
        style: Any = None,  # last: Gradio fills it from the last input, after injecting the request
    ) -> None:
        """Refuse a take that cannot be made (a mistake, or over the person's quotas), before
        anything on the page changes.

        This event has no outputs, so the error toast is all that shows: the form stays as typed.
        """
        take = take_request(profile_id, text, language, size, preset, seed, temperature, top_k, top_p,
                            repetition_penalty, style)
        user = page_caller(self.ctx.studio, request)
        self.ctx.studio.check_generation(take, owner=self.ctx.owner(request),
                                         **({} if user is None else {"user": user}))

    def left(self, request: gr.Request) -> Any:
        """The line under Generate: what the person's quotas leave; hidden where none is set."""
        user = page_caller(self.ctx.studio, request)
        line = "" if user is None else self.ctx.studio.quotas.remaining(user).summary()
        return gr.update(value=line, visible=bool(line))

    def _studio_for(self, request: Any) -> Any:
        """The studio as :class:`GenerationJobs` calls it, with the take's person added: whose
        profile it speaks with and whose take it becomes, and whose quotas it uses."""
        user = page_caller(self.ctx.studio, request)
        quota = {} if user is None else {"user": user}
        start = functools.partial(self.ctx.studio.start_generation, owner=self.ctx.owner(request), **quota)
        return types.SimpleNamespace(start_generation=start)

    def start(self, request: gr.Request) -> tuple[Any, ...]:
        """Swap Generate for Cancel, clear the last take, and say whether the take waits.

        Returns:
            (ticket, generate button, cancel button, status, live audio, result, details, sentences, effect)
        """
        ticket = self.jobs.reserve(session_key(request))
        self.last_takes.pop(session_key(request), None)
        ahead = jobs_ahead(self.ctx.blocks)
        hidden, shown = gr.update(visible=False), gr.update(visible=True)
        live = gr.update(value=None, visible=True)  # Cancel hid it
        return ticket, hidden, shown, status_html(waiting_label(ahead)), live, None, "", hidden, hidden

    def last_take(self, request: gr.Request) -> str:
        """The id of the take this page saved last ("" when the last attempt saved none)."""
        return self.last_takes.get(session_key(request), "")

    def generate(
        self,
        ticket: str | None,
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
        style: Any = None,  # last: Gradio fills it from the last input, after the injected ones
    ) -> Iterator[tuple[Any, ...]]:
        """Stream the take. Yields (live audio, final WAV path, details, status, generate, cancel).

        Never raises: a refusal, a failure and a cancel each end with the Generate button back
        and a status that says what happened (a raise would leave Cancel showing and badges).
        """
        key = session_key(request)
        if not ticket:  # called without start (tests, old pages): take a ticket now
            ticket = self.jobs.reserve(key)
        record: Generation | None = None
        try:
            take = take_request(
                profile_id, text, language, size, preset, seed, temperature, top_k, top_p, repetition_penalty, style
            )
            for message in self.jobs.run(key, self._studio_for(request), take, ticket=ticket):
                if isinstance(message, JobProgress):
                    label = stage_label(message.stage, message.done, message.total, message.detail)
                    progress(stage_fraction(message.stage, message.done, message.total), desc=label)
                    yield gr.skip(), gr.skip(), gr.skip(), status_html(label), gr.skip(), gr.skip()
                elif isinstance(message, JobAudio):
                    yield audio.wav_bytes(message.samples), *(gr.skip(),) * 5
                elif isinstance(message, JobDone):
                    record = message.generation
            if record is None:  # the service always ends with a record; be explicit if it did not
                raise RuntimeError("generation ended without a saved record")
            owner = self.ctx.owner(request)
            saved = played_file(self.ctx.studio, record)  # with the voice's default effect, if any
            final = self.ctx.temp.copy(saved, download_name(record), owner)
        except Cancelled:
            if self.jobs.is_superseded(key, ticket):  # a newer take of this page owns the page now
                yield gr.skip()
                return
            yield gr.skip(), gr.skip(), gr.skip(), status_html(CANCELLED, "warn"), *buttons(generating=False)
            return
        except Exception as exc:
            reason = warn(exc)
            yield gr.skip(), gr.skip(), gr.skip(), status_html(f"Not generated: {reason}", "error"), *buttons(
                generating=False
            )
            return
        self.last_takes[key] = record.id
        if record.status != "ok" and record.message:
            gr.Warning(escape(record.message))
        done = f"Saved to History · {fmt_seconds(record.duration)} of audio"
        yield gr.skip(), final, details_html(record), status_html(done, "ok"), *buttons(generating=False)

    def cancel(self, request: gr.Request) -> tuple[Any, Any, Any, Any]:
        """Stop this session's take, waiting or running: the Generate button comes back and the
        live player stops and hides (audio sent just before the cancel may arrive after this
        answer: no player for a take that was not saved). Returns (status, generate, cancel, live)."""
        stopped = self.jobs.cancel(session_key(request))
        text = "Cancelled — the take was stopped and not saved." if stopped else CANCELLED
        return status_html(text, "warn"), *buttons(generating=False), gr.update(value=None, visible=False)


@dataclass
class GenerateTab:
    """Components other tabs fill in ("use these settings again")."""

    tab: gr.Tab
    profile: gr.Dropdown
    text: gr.Textbox
    language: gr.Dropdown
    size: gr.Radio
    preset: gr.Radio
    seed: gr.Textbox
    temperature: gr.Slider
    top_k: gr.Slider
    top_p: gr.Slider
    repetition_penalty: gr.Slider
    empty: gr.Markdown
    handlers: GenerateHandlers

    @property
    def settings_outputs(self) -> list[Any]:
        return [self.profile, self.text, self.language, self.size, self.preset, self.seed, self.temperature,
                self.top_k, self.top_p, self.repetition_penalty]


def build(ctx: UIContext, jobs: GenerationJobs | None = None) -> GenerateTab:
    """Lay out the Generate tab and wire its events."""
    h = GenerateHandlers(ctx, jobs)
    balanced = PRESETS[DEFAULT_PRESET]
    sizes = ctx.sizes()
    with gr.Tab("Generate", id="generate") as tab:
        ticket = gr.State("")  # inside the Tab: a State directly under gr.Tabs shifts the tab order
        take_id = gr.State("")
        empty = gr.Markdown(NO_PROFILES, visible=False, elem_classes="vb-empty")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                profile = gr.Dropdown(label="Voice profile", choices=[], value=None, elem_id="gen-profile")
                style = style_box()
                # No max_length: the browser would cut a long paste silently. The counter and the
                # split panel say so instead, and the service refuses a take over the limit.
                text = gr.Textbox(
                    label="Text to speak",
                    lines=6,
                    max_lines=20,
                    placeholder="What the voice should say; long texts are split into sentences.",
                    elem_id="gen-text",
                )
                count = gr.Markdown(
                    f"0 / {TEXT_MAX_CHARS:,} characters", elem_classes="vb-count", elem_id="gen-count"
                )
                with gr.Column(
                    visible=False, variant="panel", elem_id="gen-too-long", elem_classes="vb-too-long"
                ) as too_long:
                    gr.Markdown(TOO_LONG)
                    split_btn = gr.Button("Split into parts", size="md", elem_id="gen-split")
                with gr.Column(visible=False, variant="panel", elem_id="gen-waiting-box") as waiting_box:
                    waiting = gr.Textbox(
                        label="Waiting for the next take",
                        lines=3,
                        max_lines=8,
                        interactive=True,
                        info="Generate the text above, then move the next part up.",
                        elem_id="gen-waiting",
                    )
                    next_btn = gr.Button("Move the next part up", size="md", elem_id="gen-next-part")
                with gr.Row():
                    language = gr.Dropdown(
                        [("Profile's language", PROFILE_LANGUAGE), *[(n, n) for n in ctx.languages()]],
                        value=PROFILE_LANGUAGE,
                        label="Language",
                        min_width=220,  # on a phone it takes the whole row, so its text fits
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
                        # A Textbox, not a Number: a Number with a minimum shows 0 when empty,
                        # and empty is what "random" looks like. The service checks the range.
                        seed = gr.Textbox(
                            label="Seed",
                            value="",
                            max_lines=1,
                            placeholder="Random",
                            info=f"Blank = random; reuse a seed (0 to {SEED_MAX}) to repeat a take",
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
                left = gr.Markdown("", visible=False, elem_id="gen-left", elem_classes="vb-note")
            with gr.Column(scale=2):
                status = gr.HTML(
                    status_html(READY),
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
                effect_panel, effect_h = effect_ui.build(ctx, with_download=False, prefix="gen-fx")
                sentences, sentence_h = sentence_ui.build(ctx, with_download=False, prefix="gen-sentence")
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
    text.change(
        h.length_notice,
        inputs=text,
        outputs=too_long,
        trigger_mode="always_last",
        show_progress="hidden",
        **ui_event("length_notice"),
        **LIGHT_QUEUE,
    )
    split_btn.click(
        h.split,
        inputs=[text, waiting],
        outputs=[text, waiting, too_long, waiting_box],
        **ui_event("split_text"),
        **LIGHT_QUEUE,
    )
    next_btn.click(
        h.next_part,
        inputs=waiting,
        outputs=[text, waiting, waiting_box],
        **ui_event("next_part"),
        **LIGHT_QUEUE,
    )
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

    profile.change(lambda voice: style_for(ctx, voice), inputs=profile, outputs=style, **ui_event("gen_style"))
    settings = [profile, text, language, size, preset, seed, temperature, top_k, top_p, repetition_penalty, style]
    # check (no outputs: a refusal is a toast and nothing else) -> start -> generate (always ends by
    # restoring the Generate button). No ``cancels=``: a cancelled event gets an "Error" badge.
    started = generate_btn.click(
        h.check, inputs=settings, **ui_event("generate_check"), **LIGHT_QUEUE
    ).success(
        h.start,
        outputs=[ticket, generate_btn, cancel_btn, status, live, result, details, sentences.box, effect_panel.box],
        show_progress="hidden",
        **ui_event("generate_start"),
        **LIGHT_QUEUE,
    )
    made = started.then(
        h.generate,
        inputs=[ticket, *settings],
        outputs=[live, result, details, status, generate_btn, cancel_btn],
        show_progress_on=[status],
        **ui_event("generate"),
        **MODEL_QUEUE,
    )
    opened = made.then(h.last_take, outputs=take_id, **ui_event("generate_last_take"), **LIGHT_QUEUE)
    made.then(h.left, outputs=left, **ui_event("generate_left"), **LIGHT_QUEUE)
    tab.select(h.left, outputs=left, **ui_event("generate_left_tab"), **LIGHT_QUEUE)
    opened.then(sentence_h.open, inputs=take_id, outputs=sentences.opened, **ui_event("generate_sentences"), **LIGHT_QUEUE)
    sentence_ui.wire(sentences, sentence_h, take_id, [result, details])
    opened.then(effect_h.open, inputs=take_id, outputs=effect_panel.opened, **ui_event("generate_fx"), **LIGHT_QUEUE)
    effect_ui.wire(effect_panel, effect_h, take_id, [result, details])
    cancel_btn.click(
        h.cancel,
        outputs=[status, generate_btn, cancel_btn, live],
        **ui_event("generate_cancel"),
        **LIGHT_QUEUE,
    )

    return GenerateTab(
        tab, profile, text, language, size, preset, seed, temperature, top_k, top_p, repetition_penalty, empty, h
    )
