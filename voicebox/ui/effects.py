"""The effect of an open take, in the History tab and below the Generate tab's result.

Pick a preset or custom settings, press Preview to hear the start of the take through them
(nothing is stored), then Apply to keep it or Remove to go back to the clean take, which is
never changed (:mod:`voicebox.take_effects`). "Use for new takes of this voice" makes the chain
the voice's default. Moving a slider switches the choice to Custom in the browser, without a
round trip, so what is previewed is always what the controls show.

A refused value (a low cut of 10 Hz, a low cut above the high cut) is a warning toast and
nothing else: the handlers are :func:`~voicebox.ui.common.refusing`, so no "Error" badge lands on
the panel and the controls stay as the person left them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from .. import take_effects
from ..effects import (
    CUSTOM,
    NO_EFFECT,
    NONE,
    PRESET_LABELS,
    PRESET_NAMES,
    PRESETS,
    SETTINGS,
    EffectChain,
    by_name,
)
from ..errors import InvalidInput, NotFound
from ..records import Generation
from .common import LIGHT_QUEUE, UIContext, escape, refusing, ui_event
from .takes import download_name

CHOICES = [("None", NONE), *[(PRESET_LABELS[k], k) for k in PRESET_NAMES], ("Custom", CUSTOM)]
#: Slider steps (the ranges come from :data:`voicebox.effects.SETTINGS`).
STEPS = {"gain_db": 0.5, "low_cut_hz": 10, "high_cut_hz": 50, "bass_db": 0.5, "mid_db": 0.5, "treble_db": 0.5,
         "compressor_db": 1, "compressor_ratio": 0.5, "distortion_db": 1, "echo_ms": 1, "echo_feedback": 0.05,
         "echo_mix": 0.05, "reverb_size": 0.05, "reverb_mix": 0.05, "pitch_semitones": 0.5, "speed": 0.05}
#: The sliders, three to a row on a laptop (a phone stacks them).
ROWS = [("pitch_semitones", "speed", "gain_db"), ("low_cut_hz", "high_cut_hz"), ("bass_db", "mid_db", "treble_db"),
        ("compressor_db", "compressor_ratio", "distortion_db"), ("echo_ms", "echo_feedback", "echo_mix"),
        ("reverb_size", "reverb_mix")]
#: The sliders' order, as the handlers take and return their values.
ORDER = [name for row in ROWS for name in row]
assert sorted(ORDER) == sorted(SETTINGS), "every setting has one slider"
INTRO = ("#### Effect\nTry a preset or your own settings: **Preview** plays the start of the take with them, "
         "**Apply** keeps them. The clean take is never changed — **Remove effect** brings it back.")


def values_of(chain: EffectChain) -> list[float]:
    return [getattr(chain, name) for name in ORDER]


def chosen(preset: str | None, values: tuple[Any, ...]) -> EffectChain:
    """The chain the controls show: a preset as it is, or (Custom) the sliders' values."""
    if preset in (None, "", NONE):
        return NO_EFFECT
    if preset != CUSTOM:
        return by_name(preset)
    return EffectChain.from_dict(dict(zip(ORDER, values)))


def status_text(record: Generation, voice_default: EffectChain | None) -> str:
    now = (f"**Effect on this take: {escape(record.effects.label())}.** The clean take is kept."
           if record.effects else "No effect on this take: it plays as it was made.")
    default = f" New takes of this voice get **{escape(voice_default.label())}**." if voice_default else ""
    return now + default


class EffectHandlers:
    """Callbacks of the effect panel; each is a thin call into :mod:`voicebox.take_effects`."""

    def __init__(self, ctx: UIContext, with_download: bool = True, info: Any = None) -> None:
        self.ctx = ctx
        self.with_download = with_download  # the History tab has a download button to refresh
        self.info = info  # how the take's details are shown where the panel lives

    def _voice_default(self, record: Generation) -> EffectChain | None:
        try:
            return self.ctx.studio.get_profile(record.profile_id, owner=record.owner).effects
        except NotFound:  # the voice was deleted; the take stays
            return None

    @refusing
    def open(self, generation_id: str | None) -> tuple[Any, ...]:
        """The panel for a newly opened take: (box, preset, *sliders, preview, status)."""
        hidden = gr.update(value=None, visible=False)  # the preview player shows once there is one
        if not generation_id:
            return (gr.update(visible=False), NONE, *values_of(NO_EFFECT), hidden, "")
        record = self.ctx.studio.get_generation(generation_id, owner=self.ctx.owner())
        chain = record.effects or NO_EFFECT
        preset = chain.preset if chain.preset in PRESETS and PRESETS[chain.preset] == chain else (
            NONE if record.effects is None else CUSTOM)
        return (gr.update(visible=True), preset, *values_of(chain), hidden,
                status_text(record, self._voice_default(record)))

    @refusing
    def pick(self, preset: str | None) -> tuple[Any, ...]:
        """A preset was picked: the sliders show its values (Custom keeps them as they are)."""
        if preset == CUSTOM:
            return (gr.skip(),) * len(SETTINGS)
        return tuple(values_of(by_name(preset or NONE)))

    @refusing
    def preview(self, generation_id: str | None, preset: str | None, *values: Any) -> tuple[Any, Any]:
        """(preview player, status): the start of the take through the chosen chain."""
        record = self._record(generation_id)
        chain = chosen(preset, values)
        data = take_effects.preview(self.ctx.studio, record.id, chain, owner=record.owner)
        name = f"{download_name(record)[:-4]}-preview.wav"
        path = self.ctx.temp.write(data, name, record.owner)
        return gr.update(value=path, visible=True), f"Previewing **{escape(chain.label())}**: press Apply to keep it."

    @refusing
    def apply(self, generation_id: str | None, preset: str | None, *values: Any) -> tuple[Any, ...]:
        """Keep the chosen chain: (take player, details[, download], preset, status)."""
        record = self._record(generation_id)
        chain = chosen(preset, values)
        record = take_effects.set_effect(self.ctx.studio, record.id, chain, owner=record.owner)
        gr.Info(f"The take now plays with {escape(chain.label())}." if record.effects else "The effect was removed.")
        return (*self._take(record), gr.skip(), status_text(record, self._voice_default(record)))

    @refusing
    def remove(self, generation_id: str | None) -> tuple[Any, ...]:
        """Back to the clean take: (take player, details[, download], preset, status)."""
        record = self._record(generation_id)
        record = take_effects.remove_effect(self.ctx.studio, record.id, owner=record.owner)
        gr.Info("The effect was removed: the take plays as it was made.")
        return (*self._take(record), NONE, status_text(record, self._voice_default(record)))

    @refusing
    def make_default(self, generation_id: str | None, preset: str | None, *values: Any) -> Any:
        """The chosen chain becomes the voice's default for new takes ("None" clears it): the status."""
        record = self._record(generation_id)
        chain = chosen(preset, values)
        profile = take_effects.set_voice_default(self.ctx.studio, record.profile_id, chain, owner=record.owner)
        said = f"New takes of {escape(profile.name)} get {escape(chain.label())}." if profile.effects else (
            f"New takes of {escape(profile.name)} have no effect.")
        gr.Info(said)
        return status_text(record, profile.effects)

    def _record(self, generation_id: str | None) -> Generation:
        if not generation_id:
            raise InvalidInput("Open a take first.")
        return self.ctx.studio.get_generation(generation_id, owner=self.ctx.owner())

    def _take(self, record: Generation) -> tuple[Any, ...]:
        """The take's player, details (and download) after a change."""
        from .takes import details_html

        path = self.ctx.temp.copy(take_effects.played_file(self.ctx.studio, record), download_name(record),
                                  record.owner)
        details = self.info(record) if self.info is not None else details_html(record)
        return (path, details, gr.update(value=path))[: 3 if self.with_download else 2]


@dataclass
class EffectPanel:
    box: Any
    preset: Any
    sliders: list[Any]
    preview_player: Any
    status: Any
    preview: Any
    apply: Any
    remove: Any
    default: Any
    prefix: str

    @property
    def opened(self) -> list[Any]:
        return [self.box, self.preset, *self.sliders, self.preview_player, self.status]


def _slider(name: str, prefix: str) -> gr.Slider:
    s = SETTINGS[name]
    low = min(0.0, s.low) if s.off_at_zero else s.low
    high = max(0.0, s.high) if s.off_at_zero else s.high
    unit = f" ({s.unit})" if s.unit and s.unit != "x" else (" (×)" if s.unit == "x" else "")
    return gr.Slider(low, high, value=s.neutral, step=STEPS[name], label=f"{s.label}{unit}", info=s.help or None,
                     min_width=160, elem_id=f"{prefix}-{name.replace('_', '-')}")


def build(ctx: UIContext, with_download: bool = True, prefix: str = "fx",
          info: Any = None) -> tuple[EffectPanel, EffectHandlers]:
    """Lay out the panel (hidden until a take is open); wire it with :func:`wire`."""
    with gr.Column(visible=False, elem_id=f"{prefix}-panel", elem_classes="vb-effects") as box:
        gr.Markdown(INTRO, elem_classes="vb-note")
        preset = gr.Radio(CHOICES, value=NONE, label="Effect", elem_id=f"{prefix}-preset")
        sliders: list[Any] = []
        with gr.Accordion("Custom settings", open=False, elem_id=f"{prefix}-custom"):
            for row in ROWS:
                with gr.Row():
                    sliders += [_slider(name, prefix) for name in row]
        with gr.Row(elem_classes="vb-effect-actions"):
            preview = gr.Button("Preview", size="md", elem_id=f"{prefix}-preview")
            apply = gr.Button("Apply", variant="primary", size="md", elem_id=f"{prefix}-apply")
            remove = gr.Button("Remove effect", size="md", elem_id=f"{prefix}-remove")
        player = gr.Audio(label="Preview", type="filepath", interactive=False, autoplay=True, visible=False,
                          buttons=["download"], elem_id=f"{prefix}-preview-player")
        status = gr.Markdown("", elem_id=f"{prefix}-status", elem_classes="vb-note")
        default = gr.Button("Use this effect for new takes of this voice", size="sm", elem_id=f"{prefix}-default")
    panel = EffectPanel(box, preset, sliders, player, status, preview, apply, remove, default,
                        prefix.replace("-", "_"))
    return panel, EffectHandlers(ctx, with_download, info)


def wire(panel: EffectPanel, handlers: EffectHandlers, selected: Any, take_outputs: list[Any]) -> None:
    """``take_outputs``: the take's (player, details[, download]) to refresh after a change."""
    name = panel.prefix
    controls = [selected, panel.preset, *panel.sliders]
    panel.preset.input(handlers.pick, inputs=panel.preset, outputs=panel.sliders, **ui_event(f"{name}_pick"),
                       **LIGHT_QUEUE)
    for slider, setting in zip(panel.sliders, ORDER):  # a moved slider means custom settings
        slider.input(None, outputs=panel.preset, js=f"() => '{CUSTOM}'", **ui_event(f"{name}_custom_{setting}"))
    panel.preview.click(handlers.preview, inputs=controls, outputs=[panel.preview_player, panel.status],
                        **ui_event(f"{name}_preview"), **LIGHT_QUEUE)
    changed = [*take_outputs, panel.preset, panel.status]
    panel.apply.click(handlers.apply, inputs=controls, outputs=changed, **ui_event(f"{name}_apply"), **LIGHT_QUEUE)
    panel.remove.click(handlers.remove, inputs=selected, outputs=changed, **ui_event(f"{name}_remove"),
                       **LIGHT_QUEUE)
    panel.default.click(handlers.make_default, inputs=controls, outputs=panel.status,
                        **ui_event(f"{name}_default"), **LIGHT_QUEUE)
