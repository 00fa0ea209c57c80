"""Models tab: what is loaded where, and the buttons to load, unload and switch sizes.

Status reads never wait for the model lock (the engines' ``status()`` is lock-free), so the tab
answers during a long generation; load and unload queue behind model work like everything else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import gradio as gr

from .common import LIGHT_QUEUE, MODEL_QUEUE, UIContext, escape, facts_html, refusing, ui_event
from .transcribe import short_model


def badge(loaded: bool) -> str:
    return (
        '<span class="vb-badge vb-badge-on">Loaded</span>'
        if loaded
        else '<span class="vb-badge vb-badge-off">Not loaded</span>'
    )


def decode_loop_label(status: dict[str, Any]) -> str | None:
    """How frames are made: CUDA graphs, voicebox's loop (and its linear precision), or the official code."""
    loop = status.get("decode_loop")
    if loop == "cuda-graphs":
        return "CUDA graphs (faster-qwen3-tts)"
    if loop == "voicebox":
        precision = status.get("linear_precision")
        return f"voicebox, {precision} linear layers" if precision else "voicebox"
    return "official qwen-tts" if loop == "official" else None


def engine_label(status: dict[str, Any]) -> str | None:
    """Which engine speaks: PyTorch, or GGML with its quantisation."""
    engine = status.get("engine")
    if engine == "ggml":
        return f"GGML (qwentts.cpp), {status.get('quant')}"
    if engine == "remote":
        return "vLLM-Omni servers (remote)"
    return "PyTorch (qwen-tts)" if engine == "torch" else None


def public_reason(text: str | None) -> str:
    """A reason to show on the page: server folders reduced to their last name."""
    return re.sub(r"(?:[A-Za-z]:)?[/\\](?:[^\s/\\;,()]+[/\\])+([^\s/\\;,()]+)", r"\1", text or "")


def servers_html(servers: list[dict[str, Any]] | None) -> str:
    """The remote backend's vLLM-Omni servers: each one's state, requests in flight and last error."""
    if not servers:
        return ""
    rows = []
    for server in servers:
        state = server.get("state") or "unknown"
        retry = f" (retry in {max(1, round(server['retry_in']))} s)" if server.get("retry_in") else ""
        rows.append(f"<tr><td>{escape(server.get('url') or '')}</td><td class='vb-server-{escape(state)}'>"
                    f"{escape(state)}{escape(retry)}</td><td>{int(server.get('outstanding') or 0)}</td></tr>")
        if server.get("last_error"):  # on a row of its own: a sentence does not fit a state column
            rows.append(f"<tr class='vb-server-error'><td colspan='3'>{escape(public_reason(server['last_error']))}"
                        "</td></tr>")
    return ("<table class='vb-servers' id='models-servers'><tr><th>Server</th><th>State</th><th>In flight</th></tr>"
            + "".join(rows) + "</table>")


def tts_html(status: dict[str, Any]) -> str:
    loaded = bool(status.get("loaded"))
    rows: list[tuple[str, Any]] = [
        ("Engine", engine_label(status)),
        ("Size", status.get("size")),
        ("Device", status.get("device")),
        ("Precision", status.get("dtype")),
        ("Memory", f"{status.get('memory_mb', 0):,.0f} MB" if loaded else None),
        ("Load time", f"{status['load_seconds']:.1f} s" if status.get("load_seconds") else None),
        ("Attention", status.get("attention")),
        ("Decode loop", decode_loop_label(status) if loaded else None),
    ]
    labels = (("why", "Why this engine"), ("precision_why", "Why these layers"), ("notice", "Note"))
    why = [(label, public_reason(status.get(key))) for key, label in labels if status.get(key)]
    note = "".join(f"<p class='vb-note'><b>{label}:</b> {escape(line)}</p>" for label, line in why)
    note += "" if loaded else "<p class='vb-note'>Loads automatically on the first generation.</p>"
    model = f"<p class='vb-model'>{escape(short_model(status.get('model')))}</p>" if loaded else ""
    return f"{badge(loaded)}{model}{facts_html(rows)}{servers_html(status.get('servers'))}{note}"


def variants_html(studio: Any) -> str:
    """The other Qwen3-TTS families this server is configured with (voice design, built-in
    voices): which checkpoint, and whether it is in memory. Each loads on first use; at most one
    big model is kept at a time, so using one unloads the others."""
    families = (("Voice design", studio.designer.engine, "VOICEBOX_DESIGN_MODEL"),
                ("Built-in voices", studio.speakers.engine, "VOICEBOX_SPEAKER_MODEL"))
    # with VOICEBOX_BACKEND=remote the speech servers clone voices only: these two models would run
    # in voicebox's own process (on its CPU, in the compose deployment), so that is turned off there
    remote = getattr(getattr(studio, "settings", None), "backend", None) == "remote"
    parts = []
    for title, engine, setting in families:
        if engine is None:
            why = (f"off on this server ({setting}=off): the speech servers make cloned voices only"
                   if remote else "off on this server")
            parts.append(f"<p><strong>{title}</strong> · <span class='vb-note'>{why}</span></p>")
            continue
        status = engine.status()
        source = next(iter(engine.models_by_size.values()), "")
        parts.append(f"<p><strong>{title}</strong> {badge(bool(status.get('loaded')))}</p>"
                     f"<p class='vb-model'>{escape(short_model(source))}</p>")
    note = "<p class='vb-note'>Each loads on first use; using one unloads the others (one big model at a time).</p>"
    return "".join(parts) + note


def whisper_html(status: dict[str, Any]) -> str:
    loaded = bool(status.get("loaded"))
    rows: list[tuple[str, Any]] = [
        ("Model", short_model(status.get("model")) or "automatic"),
        ("Device", status.get("device")),
        ("Precision", status.get("compute_type")),
        ("Memory", f"{status.get('memory_mb', 0):,.0f} MB" if loaded and status.get("memory_mb") else None),
        ("Transcriptions", status.get("model_calls")),
        ("Load time", f"{status['load_seconds']:.1f} s" if status.get("load_seconds") else None),
    ]
    # When loaded the facts say it all (the engine's message names server paths); otherwise the
    # message explains what happens next or what went wrong.
    message = "" if loaded else (status.get("message") or "")
    note = f"<p class='vb-note'>{escape(message)}</p>" if message else ""
    return f"{badge(loaded)}{facts_html(rows)}{note}"


def cache_html(stats: dict[str, Any]) -> str:
    rows: list[tuple[str, Any]] = [
        ("In memory", f"{stats.get('memory_entries', 0)} of {stats.get('memory_capacity', 0)}"),
        ("On disk", f"{stats.get('disk_entries', 0)} ({stats.get('disk_bytes', 0) / 1048576:.1f} MB)"),
        ("Hits", stats.get("hits", 0)),
        ("Disk hits", stats.get("disk_hits", 0)),
        ("Misses", stats.get("misses", 0)),
    ]
    return (
        f"{facts_html(rows)}<p class='vb-note'>A voice is built once per set of samples and model, then "
        "reused. Clearing only costs time on the next generation.</p>"
    )


class ModelHandlers:
    def __init__(self, ctx: UIContext) -> None:
        self.ctx = ctx

    def _render(self, status: dict[str, Any]) -> tuple[Any, ...]:
        """(TTS card, Whisper card, cache card, size picker, other models): the picker shows the
        loaded size."""
        loaded = status["tts"].get("size") if status["tts"].get("loaded") else None
        return (
            tts_html(status["tts"]),
            whisper_html(status["whisper"]),
            cache_html(status["prompt_cache"]),
            gr.update(value=loaded) if loaded in self.ctx.sizes() else gr.skip(),
            variants_html(self.ctx.studio),
        )

    @refusing
    def refresh(self) -> tuple[Any, ...]:
        return self._render(self.ctx.studio.model_status())

    @refusing
    def load_tts(self, size: str) -> tuple[Any, ...]:
        status = self.ctx.studio.load_model("tts", size)
        gr.Info(f"Qwen3-TTS {escape(status['tts']['size'])} is loaded.")
        return self._render(status)

    @refusing
    def unload_tts(self) -> tuple[Any, ...]:
        status = self.ctx.studio.unload_model("tts")
        gr.Info("Qwen3-TTS unloaded; its memory is free.")
        return self._render(status)

    @refusing
    def unload_variants(self) -> tuple[Any, ...]:
        for engine in (self.ctx.studio.designer.engine, self.ctx.studio.speakers.engine):
            if engine is not None:
                engine.unload()
        gr.Info("The voice design and built-in voice models are unloaded.")
        return self._render(self.ctx.studio.model_status())

    @refusing
    def load_whisper(self) -> tuple[Any, ...]:
        status = self.ctx.studio.load_model("whisper")
        gr.Info("Whisper is loaded.")
        return self._render(status)

    @refusing
    def unload_whisper(self) -> tuple[Any, ...]:
        status = self.ctx.studio.unload_model("whisper")
        gr.Info("Whisper unloaded.")
        return self._render(status)

    @refusing
    def clear_cache(self) -> tuple[Any, ...]:
        self.ctx.studio.clear_prompt_cache()
        gr.Info("Voice-prompt cache cleared.")
        return self._render(self.ctx.studio.model_status())


@dataclass
class ModelsTab:
    tab: gr.Tab
    handlers: ModelHandlers


def build(ctx: UIContext) -> ModelsTab:
    h = ModelHandlers(ctx)
    sizes = ctx.sizes()
    with gr.Tab("Models", id="models") as tab:
        with gr.Row(equal_height=False):
            with gr.Column(elem_classes="vb-card"):
                gr.Markdown("### Text to speech · Qwen3-TTS")
                tts = gr.HTML(elem_id="models-tts")
                size = gr.Radio(sizes, value=sizes[0], label="Size", elem_id="models-size")
                with gr.Row():
                    load_tts = gr.Button(
                        "Load / switch", variant="primary", size="md", elem_id="models-load-tts"
                    )
                    unload_tts = gr.Button("Unload", size="md", elem_id="models-unload-tts")
            with gr.Column(elem_classes="vb-card"):
                gr.Markdown("### Transcription · Whisper")
                whisper = gr.HTML(elem_id="models-whisper")
                with gr.Row():
                    load_whisper = gr.Button(
                        "Load", variant="primary", size="md", elem_id="models-load-whisper"
                    )
                    unload_whisper = gr.Button("Unload", size="md", elem_id="models-unload-whisper")
            with gr.Column(elem_classes="vb-card"):
                gr.Markdown("### Voice-prompt cache")
                cache = gr.HTML(elem_id="models-cache")
                clear = gr.Button("Clear cache", variant="stop", size="md", elem_id="models-clear-cache")
            with gr.Column(elem_classes="vb-card"):
                gr.Markdown("### Other Qwen3-TTS models")
                variants = gr.HTML(elem_id="models-variants")
                unload_variants = gr.Button("Unload", size="md", elem_id="models-unload-variants")
        refresh = gr.Button("Refresh", size="sm", elem_id="models-refresh")
    outputs = [tts, whisper, cache, size, variants]
    unload_variants.click(h.unload_variants, outputs=outputs, **ui_event("models_unload_variants"), **MODEL_QUEUE)
    tab.select(h.refresh, outputs=outputs, **ui_event("models_refresh_tab"), **LIGHT_QUEUE)
    refresh.click(h.refresh, outputs=outputs, **ui_event("models_refresh"), **LIGHT_QUEUE)
    load_tts.click(h.load_tts, inputs=size, outputs=outputs, **ui_event("models_load_tts"), **MODEL_QUEUE)
    unload_tts.click(h.unload_tts, outputs=outputs, **ui_event("models_unload_tts"), **MODEL_QUEUE)
    load_whisper.click(h.load_whisper, outputs=outputs, **ui_event("models_load_whisper"), **MODEL_QUEUE)
    unload_whisper.click(
        h.unload_whisper, outputs=outputs, **ui_event("models_unload_whisper"), **MODEL_QUEUE
    )
    clear.click(h.clear_cache, outputs=outputs, **ui_event("models_clear_cache"), **LIGHT_QUEUE)
    return ModelsTab(tab, h)
