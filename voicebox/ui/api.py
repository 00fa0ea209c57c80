"""The ``gradio_client`` API: named endpoints with plain parameters and JSON results.

The tabs' own events take and return UI state (dropdown updates, HTML); they are private.
These endpoints are what a ``gradio_client.Client`` sees instead, each a one-line call into the
same :class:`~voicebox.services.Studio` the tabs and the REST API use:

* JSON-only operations are ``gr.api`` functions, typed from their signatures.
* Operations with audio in or out use hidden components, because Gradio then checks that an
  uploaded path really is an upload (``gr.api`` skips pre-processing and would read any path a
  client names) and serves returned files the usual way. Returned audio is a private temp copy.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from .. import take_effects
from ..effects import parse as parse_effects
from ..engines.params import DEFAULT_PRESET
from ..ids import utc_now
from . import effects_api
from .common import LIGHT_QUEUE, MODEL_QUEUE, UIContext, check_upload, guarded
from .generate import download_name, generation_request

#: Public endpoint names, tested against ``demo.get_api_info()``.
ENDPOINTS = (
    "list_profiles",
    "get_profile",
    "create_profile",
    "update_profile",
    "delete_profile",
    "add_sample",
    "update_sample_text",
    "delete_sample",
    "generate",
    "transcribe",
    "list_history",
    "get_generation",
    "generation_audio",
    "delete_generation",
    "history_stats",
    "model_status",
    *effects_api.ENDPOINTS,
)


def build(ctx: UIContext) -> None:
    """Register every public endpoint inside the current ``gr.Blocks``.

    Each endpoint reads and changes the data of the caller's login (:meth:`UIContext.owner`, from
    the request Gradio runs the endpoint for), so its parameters stay what clients send."""
    studio, owner = ctx.studio, ctx.owner

    # ---- profiles -----------------------------------------------------------------------------
    @guarded
    def list_profiles(search: str = "") -> dict[str, Any]:
        """Profiles whose name or description contains ``search`` (all when empty), by name."""
        page = studio.list_profiles(search=search or None, owner=owner())
        return {"items": [profile.to_dict() for profile in page["items"]], "total": page["total"]}

    @guarded
    def get_profile(profile_id: str) -> dict[str, Any]:
        """One profile with its samples."""
        return studio.get_profile(profile_id, owner=owner()).to_dict()

    @guarded
    def create_profile(name: str, description: str = "", language: str = "Auto", consent: bool = False) -> dict[str, Any]:
        """Create a voice profile; add samples with /add_sample. ``consent``: you have the speaker's
        permission (required where several people keep libraries; recorded with the time)."""
        return studio.create_profile(name, description, language, owner=owner(),
                                     consent=utc_now() if consent else None).to_dict()

    @guarded
    def update_profile(
        profile_id: str, name: str | None = None, description: str | None = None, language: str | None = None
    ) -> dict[str, Any]:
        """Change a profile; fields left out (None) keep their value, "" clears the description."""
        changes = {"name": name or None, "description": description, "language": language or None}
        kept = {k: v for k, v in changes.items() if v is not None}
        return studio.update_profile(profile_id, owner=owner(), **kept).to_dict()

    @guarded
    def delete_profile(profile_id: str) -> dict[str, Any]:
        """Delete a profile, its samples and cached voices; history keeps the name."""
        studio.delete_profile(profile_id, owner=owner())
        return {"deleted": profile_id}

    @guarded
    def update_sample_text(sample_id: str, reference_text: str) -> dict[str, Any]:
        """Correct a sample's transcript (empty means timbre-only)."""
        return studio.update_sample_text(sample_id, reference_text, owner=owner()).to_dict()

    @guarded
    def delete_sample(sample_id: str) -> dict[str, Any]:
        """Delete one sample and the cached voices built from it."""
        studio.delete_sample(sample_id, owner=owner())
        return {"deleted": sample_id}

    # ---- history ------------------------------------------------------------------------------
    @guarded
    def list_history(
        search: str = "", profile_id: str = "", limit: int = 50, offset: int = 0
    ) -> dict[str, Any]:
        """Saved takes, newest first; ``search`` matches text and profile name."""
        page = studio.list_history(search or None, profile_id or None, int(limit), int(offset), owner=owner())
        return {"items": [record.to_dict() for record in page["items"]], "total": page["total"]}

    @guarded
    def get_generation(generation_id: str) -> dict[str, Any]:
        """One take's record: text, profile, seed, parameters, timings."""
        return studio.get_generation(generation_id, owner=owner()).to_dict()

    @guarded
    def delete_generation(generation_id: str) -> dict[str, Any]:
        """Delete a take and its audio."""
        take_effects.delete_take(studio, generation_id, owner=owner())
        return {"deleted": generation_id}

    @guarded
    def history_stats() -> dict[str, Any]:
        """Count, total seconds, and the same per profile."""
        return studio.history_stats(owner=owner())

    @guarded
    def model_status() -> dict[str, Any]:
        """TTS and Whisper status and prompt-cache statistics."""
        return studio.model_status()

    for fn in (
        list_profiles,
        get_profile,
        create_profile,
        update_profile,
        delete_profile,
        update_sample_text,
        delete_sample,
        list_history,
        get_generation,
        delete_generation,
        history_stats,
        model_status,
    ):
        gr.api(fn, api_name=fn.__name__, **LIGHT_QUEUE)

    # ---- audio in or out: hidden components ---------------------------------------------------------
    @guarded
    def add_sample(profile_id: str, audio: str | None, reference_text: str) -> dict[str, Any]:
        """Add a voice sample (any common format); a blank transcript is filled in by Whisper."""
        path = check_upload(audio, ctx.settings)
        return studio.add_sample(profile_id, path, reference_text or None, owner=owner()).to_dict()

    @guarded
    def generate(
        profile_id: str,
        text: str,
        language: str,
        model_size: str,
        preset: str,
        seed: float | None,
        temperature: float | None,
        top_k: float | None,
        top_p: float | None,
        repetition_penalty: float | None,
        effects: str = "",
    ) -> tuple[str, dict[str, Any]]:
        """Speak ``text`` in a profile's voice; returns the WAV and the saved history record.
        ``effects``: a preset name, "none", or settings as JSON text; blank: the voice's default."""
        request = generation_request(
            profile_id, text, language, model_size, preset, seed, temperature, top_k, top_p, repetition_penalty
        ).with_changes(effects=parse_effects(effects))
        mine = owner()
        record = studio.generate(request, owner=mine)
        path = ctx.temp.copy(take_effects.played_file(studio, record), download_name(record), mine)
        return path, record.to_dict()

    @guarded
    def transcribe(audio: str | None, language: str) -> dict[str, Any]:
        """Whisper: text, language, duration and timed segments."""
        path = check_upload(audio, ctx.settings)
        return studio.transcribe(path, language=language or None)

    @guarded
    def generation_audio(generation_id: str) -> str:
        """A take's WAV file."""
        mine = owner()
        record = studio.get_generation(generation_id, owner=mine)
        return ctx.temp.copy(take_effects.played_file(studio, record), download_name(record), mine)

    effects_api.build(ctx)
    with gr.Column(visible=False, elem_id="api-endpoints"):
        profile_id = gr.Textbox(label="profile_id")
        sample_audio = gr.Audio(label="audio", type="filepath", sources=["upload"])
        reference_text = gr.Textbox(label="reference_text", value="")
        sample_out = gr.JSON(label="sample")

        text = gr.Textbox(label="text")
        language = gr.Textbox(label="language", value="", info="blank = the profile's language")
        model_size = gr.Textbox(label="model_size", value="")
        preset = gr.Textbox(label="preset", value=DEFAULT_PRESET)
        seed = gr.Number(label="seed", value=None, precision=0)
        temperature = gr.Number(label="temperature", value=None)
        top_k = gr.Number(label="top_k", value=None, precision=0)
        top_p = gr.Number(label="top_p", value=None)
        repetition_penalty = gr.Number(label="repetition_penalty", value=None)
        effects = gr.Textbox(label="effects", value="", info="preset name, none, or JSON settings; blank = the voice's default")
        speech = gr.Audio(label="speech", type="filepath")
        record = gr.JSON(label="record")

        clip = gr.Audio(label="audio", type="filepath", sources=["upload"])
        clip_language = gr.Textbox(label="language", value="")
        transcript = gr.JSON(label="transcription")

        generation_id = gr.Textbox(label="generation_id")
        take = gr.File(label="file")

        trigger = gr.Button(visible=False)

    trigger.click(
        add_sample,
        inputs=[profile_id, sample_audio, reference_text],
        outputs=sample_out,
        api_name="add_sample",
        **MODEL_QUEUE,
    )
    trigger.click(
        generate,
        inputs=[
            profile_id,
            text,
            language,
            model_size,
            preset,
            seed,
            temperature,
            top_k,
            top_p,
            repetition_penalty,
            effects,
        ],
        outputs=[speech, record],
        api_name="generate",
        **MODEL_QUEUE,
    )
    trigger.click(
        transcribe, inputs=[clip, clip_language], outputs=transcript, api_name="transcribe", **MODEL_QUEUE
    )
    trigger.click(
        generation_audio, inputs=generation_id, outputs=take, api_name="generation_audio", **LIGHT_QUEUE
    )
