"""Gradio Blocks UI: one module per tab, each a thin layer over :mod:`voicebox.services`.

``build_ui(studio, settings)`` returns the whole app, queue configured: every model call in one
concurrency group, a bounded queue, and ``api_open=False`` so the documented endpoints (see
:mod:`voicebox.ui.api`) cannot skip the queue. Gradio 6 takes the theme and CSS at launch or
mount time, not in ``gr.Blocks``: pass :func:`appearance` to ``mount_gradio_app``/``launch``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import gradio as gr

from ..auth import public, registry
from ..config import Settings
from . import account, api, batch, generate, history, mcp_tools, models, profiles, projects, sign_in, transcribe
from .common import TempAudio, UIContext, escape

log = logging.getLogger(__name__)

TITLE = "voicebox"
TAGLINE = "Clone a voice from a few seconds of audio, then speak any text in it."
ASSETS = Path(__file__).resolve().parents[2] / "assets"
#: Waiting jobs beyond this are refused with "queue full" instead of piling up.
QUEUE_MAX_SIZE = 32


def _asset(name: str) -> str:
    try:
        return (ASSETS / name).read_text(encoding="utf-8")
    except OSError:
        log.warning("asset %s is missing", name)
        return ""


def theme() -> gr.themes.Base:
    """Soft indigo/pink theme on system fonts (no font downloads: the app works offline)."""
    font = gr.themes.Font
    system = [font("ui-sans-serif"), font("system-ui"), font("Segoe UI"), font("Roboto"), font("sans-serif")]
    mono = [font("ui-monospace"), font("SFMono-Regular"), font("Menlo"), font("monospace")]
    return gr.themes.Soft(
        primary_hue="indigo",
        secondary_hue="pink",
        neutral_hue="slate",
        font=system,
        font_mono=mono,
        radius_size="lg",
    )


def appearance() -> dict[str, Any]:
    """Keyword arguments for ``gr.mount_gradio_app`` / ``Blocks.launch``: theme and CSS.

    ``style.css`` is scoped by Gradio to the app's container; ``page.css`` styles what lies
    outside it (the toasts), so it goes into the page's head unscoped.
    """
    return {"theme": theme(), "css": _asset("style.css"), "head": f"<style>{_asset('page.css')}</style>"}


def notices_of(studio: Any) -> list[str]:
    """Banner messages: the service layer's ``notices`` (or, on an older one, the recovered-database
    note from the store)."""
    notices = getattr(studio, "notices", None)
    if notices is None:
        recovered = getattr(getattr(studio, "store", None), "recovered_from_corruption", None)
        notices = [recovered] if recovered else []
    return [str(n) for n in notices if n]


def header_html(notices: list[str]) -> str:
    """Logo, title, the one-line explanation, and a warning banner per notice."""
    logo = _asset("logo.svg")
    banners = "".join(f'<div class="vb-banner" role="alert">⚠️ {escape(n)}</div>' for n in notices)
    return (
        f'<header class="vb-header"><div class="vb-logo" aria-hidden="true">{logo}</div>'
        f"<div><h1>{TITLE}</h1><p>{escape(TAGLINE)}</p></div></header>{banners}"
    )


def footer_html(rest_api: bool) -> str:
    """Where programs come in: the REST API's own docs and the OpenAI-compatible route, when the
    REST API is served beside the UI (not on a Space, which runs the Gradio app alone)."""
    if not rest_api:
        return ""
    return (
        '<footer class="vb-footer">For programs: the <a href="docs" target="_blank" rel="noopener">REST API '
        "(docs)</a> · an OpenAI-compatible <code>POST /v1/audio/speech</code> (point an OpenAI SDK's "
        "<code>base_url</code> at this address + <code>/v1</code>, with a profile name as the voice) · "
        "“Use via API” below lists the Python client's endpoints.</footer>"
    )


def build_ui(
    studio: Any | None, settings: Settings, temp: TempAudio | None = None, rest_api: bool = False
) -> gr.Blocks:
    """The whole app: Profiles, Generate, History, Projects, Batch, Transcribe and Models tabs plus the API.

    Args:
        studio: the service object shared with the REST API; built from ``settings`` when None.
        settings: configuration (upload limit, data dir).
        temp: where temp copies of audio go (tests pass one to inspect it).
        rest_api: the REST API is mounted beside the UI: link its docs in the footer.
    """
    if studio is None:
        from ..services import Studio

        studio = Studio(settings)
    ctx = UIContext(studio, settings, temp or TempAudio())
    if settings.anonymous:
        from ..anonymous import AnonymousLibraries

        ctx.anonymous = AnonymousLibraries(studio, settings.anonymous_days)
        ctx.anonymous.sweep_soon()  # libraries that expired while the server was down
    with gr.Blocks(title=f"{TITLE} — voice cloning studio", delete_cache=(1800, 3600)) as demo:
        gr.HTML(header_html(notices_of(studio)), elem_id="vb-header")
        identity = sign_in.build(ctx)
        with gr.Column(elem_id="vb-studio") as studio_column:
            with gr.Tabs(selected="profiles", elem_id="vb-tabs") as tabs:
                profile_tab = profiles.build(ctx)
                generate_tab = generate.build(ctx)
                history.build(ctx, tabs, generate_tab)
                projects.build(ctx)
                batch.build(ctx)
                transcribe.build(ctx)
                models.build(ctx)
            account.build(ctx, profile_tab, generate_tab)
        api.build(ctx)
        mcp_tools.build(ctx)  # the MCP server's tools (undocumented endpoints)
        if rest_api and (registry(settings).required or not public(settings)):  # else no one may use it
            gr.HTML(footer_html(rest_api), elem_id="vb-footer")
        _initial_load(ctx, demo, identity, studio_column, profile_tab, generate_tab)
    ctx.blocks = demo  # the Generate tab reads the model queue's length from it
    demo.queue(api_open=False, max_size=QUEUE_MAX_SIZE, default_concurrency_limit=1)
    demo.voicebox_context = ctx  # type: ignore[attr-defined]  # tests reach the handlers through it
    return demo


def _initial_load(
    ctx: UIContext,
    demo: gr.Blocks,
    identity: sign_in.SignIn,
    studio_column: gr.Column,
    profile_tab: profiles.ProfilesTab,
    generate_tab: generate.GenerateTab,
) -> None:
    """When a page opens: say who is using it, and fill the profile list and pickers (never stale
    from build time); a visitor a public server does not know sees the sign-in note instead."""
    ptab = profile_tab.handlers

    def on_load(request: gr.Request) -> tuple[Any, ...]:
        visitor, who, gate, studio_view = sign_in.on_page_load(ctx, request)
        if not visitor.known:
            return who, gate, studio_view, gr.skip(), gr.skip(), gr.skip(), gr.skip()
        plist, empty = ptab.refresh_list("", None)
        choice, gen_empty = generate_tab.handlers.refresh(None)
        return who, gate, studio_view, plist, empty, choice, gen_empty

    demo.load(
        on_load,
        outputs=[identity.who, identity.gate, studio_column,
                 profile_tab.plist, profile_tab.empty, generate_tab.profile, generate_tab.empty],
        api_name="ui_load",
        api_visibility="private",
    )
