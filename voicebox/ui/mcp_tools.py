"""The tools voicebox offers AI assistants over MCP (issue #18): speak, list voices, transcribe,
render a project.

**How Gradio 6 makes MCP tools** (``gradio/mcp.py``): every *public* named endpoint of the app
becomes a tool, named after its function; the docstring's first paragraph is the description,
its ``Args:`` lines the parameters' descriptions, its ``Returns:`` lines are appended; the input
schema comes from the endpoint's components. A file input becomes a string ("an http or https
URL"; a ``data:`` URI works too); a returned file comes back as its URL, a dict as Python's
``repr``. An event with ``queue=False`` runs inside the MCP request itself
(``Blocks.process_api``), while a queued one is replayed through ``gradio_client`` over loopback.

**What voicebox does with that.** The app's public endpoints are the Python client's API
(:mod:`voicebox.ui.api`: sixteen endpoints with ids and sampling knobs), not tools an assistant
should juggle. So the tools are separate functions written for an assistant, registered as
*undocumented* endpoints (callable, but not in "Use via API" or the client's list), and
:func:`restrict` makes the MCP server list exactly :data:`TOOLS` (from all endpoints), so no UI
event and no client endpoint is ever a tool. They are not queued, so each runs in its own MCP
request, where :mod:`voicebox.ui.mcp_guard` has recorded who proved to be calling
(:func:`caller_of`); model calls still wait for the studio's one model lock, as REST calls do.
:func:`restrict` also makes results an assistant can use: audio as MCP audio content (base64
bytes with their MIME type; a URL on this server would need a browser's login to fetch) and
dicts as JSON.
"""

from __future__ import annotations

import base64
import functools
import json
import mimetypes
from pathlib import Path
from typing import Any

import gradio as gr

from ..errors import InvalidInput, NotFound
from ..quotas import page_caller
from ..take_effects import played_file
from .common import UIContext, check_upload, handling, user_message
from .mcp_guard import CALLER_KEY, McpCaller, is_mcp_path, route_path
from .takes import download_name, generation_request

#: The tools, by name; each is the endpoint ``/mcp_<name>``.
TOOLS = ("speak", "list_voices", "transcribe", "render_project")
ENDPOINT_PREFIX = "mcp_"
#: How long render_project waits for a render by default (MCP clients often give up after a minute).
DEFAULT_RENDER_WAIT = 50.0
#: The longest a tool waits for a project's render before answering with its progress.
MAX_RENDER_WAIT = 300.0
#: A rendered project longer than this (as an MP3) is not sent back inline.
MAX_INLINE_AUDIO_BYTES = 25 * 1024 * 1024


class McpToolError(Exception):
    """What an assistant reads when a tool is refused: the plain message (no HTML, no paths)."""


def _raise_plain(exc: Exception) -> Any:
    if isinstance(exc, McpToolError):
        raise exc
    raise McpToolError(user_message(exc)) from None


#: Wrap a tool: a user error keeps its message, anything else becomes one generic sentence.
tool_errors = handling(_raise_plain)


def caller_of(ctx: UIContext, request: Any) -> McpCaller:
    """Who a tool runs for: what :class:`~voicebox.ui.mcp_guard.McpGuard` recorded for an MCP
    request; through Gradio's own routes (where its login applies), the page's visitor.

    Raises:
        McpToolError: an MCP request without the guard's record (never expected: the guard is
            what lets MCP requests in); refused rather than taken for the local user.
    """
    underlying = getattr(request, "request", None) or request
    scope = getattr(underlying, "scope", None)
    scope = scope if isinstance(scope, dict) else {}
    found = scope.get(CALLER_KEY)
    if isinstance(found, McpCaller):
        return found
    if is_mcp_path(route_path(scope)):
        raise McpToolError("This MCP request was not authenticated by the server.")
    return McpCaller(ctx.owner(request), page_caller(ctx.studio, request) or "")


def _voice(ctx: UIContext, voice: str, owner: str) -> Any:
    """One of ``owner``'s profiles by name or id, else a built-in voice by name; with no name, the
    only profile there is."""
    studio = ctx.studio
    if voice.strip():
        try:
            return studio.find_profile(voice.strip(), owner=owner)
        except NotFound:
            built_in = studio.speakers.find(voice.strip())
            if built_in is not None:
                return built_in
            names = [p.name for p in studio.list_profiles(owner=owner)["items"]] + [
                p.name for p in studio.speakers.profiles()]
            raise NotFound(f"No voice named {voice.strip()!r}. {_names('voices', names)}") from None
    profiles = studio.list_profiles(owner=owner)["items"]
    if len(profiles) == 1:
        return profiles[0]
    raise InvalidInput(f"Say which voice to use. {_names('voices', [p.name for p in profiles])}")


def _names(what: str, names: list[str]) -> str:
    if not names:
        return f"There are no {what} yet: make one in the voicebox studio first."
    return f"The {what} are: " + ", ".join(repr(n) for n in names) + "."


def _project(ctx: UIContext, name: str, owner: str) -> Any:
    """One of ``owner``'s projects by id or (case-insensitive) title."""
    projects = ctx.studio.projects.store.all(owner)
    wanted = " ".join(name.split()).casefold()
    for project in projects:
        if project.id == name.strip() or " ".join(project.title.split()).casefold() == wanted:
            return project
    raise NotFound(f"No project named {name.strip()!r}. {_names('projects', [p.title for p in projects])}")


def build(ctx: UIContext) -> None:
    """Register the tools inside the current ``gr.Blocks`` (undocumented, unqueued endpoints)."""
    studio, settings = ctx.studio, ctx.settings
    hidden: dict[str, Any] = {"api_visibility": "undocumented", "queue": False}

    @tool_errors
    def list_voices(request: gr.Request | None = None) -> dict[str, Any]:
        """List the voices you can speak with, by name: the user's cloned voice profiles, then the built-in voices.

        Returns:
            JSON: voices, each with name (pass it to speak as voice), id, language, description, samples (recordings it was cloned from; 0: it cannot speak yet) and built_in (true: a built-in voice, which follows a style); built_in_takes_style
        """
        owner = caller_of(ctx, request).owner
        profiles = studio.list_profiles(owner=owner)["items"]
        voices = [{"name": p.name, "id": p.id, "language": p.language, "description": p.description,
                   "samples": p.sample_count, "built_in": False} for p in profiles]
        voices += [{"name": p.name, "id": p.id, "language": "auto", "description": p.description, "samples": 0,
                    "built_in": True} for p in studio.speakers.profiles()]
        return {"voices": voices, "count": len(voices), "built_in_takes_style": studio.speakers.takes_style}

    @tool_errors
    def speak(
        text: str, voice: str = "", language: str = "", seed: float | None = None, style: str = "",
        request: gr.Request | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """Speak text aloud in one of the user's cloned voices and return the audio (WAV, 24 kHz mono).
        The take is also saved in the voicebox History. Long texts are made sentence by sentence
        and take longer (about real time on a GPU, several times longer on a CPU).

        Args:
            text: What to say, in plain words (up to a few thousand characters).
            voice: The voice's name (or id) from list_voices; may be empty when there is only one voice.
            language: The language of the text, e.g. English, German, French, Chinese; empty: the voice's own language.
            seed: A whole number to make the same take again; leave empty for a new take.
            style: How a built-in voice should speak, e.g. "whispering" or "excited, faster"; cloned voices refuse a style.

        Returns:
            the speech as audio (WAV)
            JSON: generation_id, voice, text, language, seconds, seed, status (ok, needs_review or incomplete), message
        """
        who = caller_of(ctx, request)
        profile = _voice(ctx, voice or "", who.owner)
        take = generation_request(profile.id, text, language or None, None, None, seed, None, None, None, None, style)
        record = studio.generate(take, owner=who.owner, user=who.user)
        path = ctx.temp.copy(played_file(studio, record), download_name(record), who.owner)  # with its voice's effect
        summary = {"generation_id": record.id, "voice": record.profile_name, "text": record.text,
                   "language": record.language, "seconds": round(record.duration, 2), "seed": record.seed,
                   "status": record.status, "message": record.message}
        return path, summary

    @tool_errors
    def transcribe(audio: str | None, language: str = "", request: gr.Request | None = None) -> dict[str, Any]:
        """Transcribe the speech in an audio clip to text with Whisper (wav, mp3, flac, ogg, m4a, ...).

        Args:
            audio: The clip: an http(s) URL the server can download, or the bytes as a data URI (data:audio/wav;base64,...).
            language: The spoken language, e.g. English; empty: detect it.

        Returns:
            JSON: text, language, duration (seconds), segments (each with start, end and text)
        """
        who = caller_of(ctx, request)  # refused where the server wants credentials
        path = check_upload(audio, settings)
        ctx.temp.served.uploaded(path, who.owner)  # the clip's copy in Gradio's folder is theirs alone
        return studio.transcribe(path, language=language or None)

    @tool_errors
    def render_project(
        project: str, wait_seconds: float | None = None, request: gr.Request | None = None
    ) -> tuple[str | None, dict[str, Any]]:
        """Render a voicebox project (a long text made of blocks: an audiobook, a podcast script) and
        return the finished audio. Only blocks that changed since the last render are made again.
        A long project takes minutes to hours: this waits up to wait_seconds, then reports the
        progress; call it again to keep waiting.

        Args:
            project: The project's title (or id), as shown on the studio's Projects tab.
            wait_seconds: How long to wait for the render before answering with its progress (default 50, at most 300).

        Returns:
            when the render is done: the whole project as one MP3 (levelled for listening)
            JSON: project, project_id, state (running, done, paused, failed, ...), blocks_done, blocks_total, seconds_left, message
        """
        owner = caller_of(ctx, request).owner
        found = _project(ctx, project or "", owner)
        renders = studio.renders
        if found.to_render and not renders.is_running(found.id):
            renders.start(found.id, owner=owner)
        wait = DEFAULT_RENDER_WAIT if wait_seconds is None else min(max(float(wait_seconds), 0.0), MAX_RENDER_WAIT)
        if renders.is_running(found.id):
            renders.wait(found.id, timeout=wait)
        found = studio.projects.store.get(found.id, owner)
        status = _render_status(found)
        if renders.is_running(found.id):
            status["message"] = status["message"] or "Still rendering: call render_project again to keep waiting."
            return None, status
        if found.to_render:  # the render ended without them: failed blocks, or paused or cancelled meanwhile
            failed = [b for b in found.blocks if b.status == "failed"]
            why = f"{len(failed)} block(s) failed, the first because: {failed[0].message}" if failed else ""
            status["message"] = why or status["message"] or "Not every block is rendered yet."
            status["message"] += " Fix the blocks in the studio's Projects tab, or call render_project to try again."
            return None, status
        job = studio.exports.start(found.id, "mp3", "none", "block", "audiobook", owner=owner)
        job = studio.exports.wait(found.id, job.id, timeout=MAX_RENDER_WAIT, owner=owner)
        if job.state != "done":
            raise InvalidInput(job.message or "The export did not finish in time; try again.")
        path = studio.exports.file(found.id, job.id, 0, owner=owner)
        status["state"] = "done"
        if path.stat().st_size > MAX_INLINE_AUDIO_BYTES:
            status["message"] = ("Rendered, but too long to send here: download it from the studio's Projects "
                                 "tab or with the REST API (POST /projects/{id}/export).")
            return None, status
        return ctx.temp.copy(path, path.name, owner), status

    gr.api(list_voices, api_name=ENDPOINT_PREFIX + "list_voices", **hidden)
    with gr.Column(visible=False, elem_id="mcp-tools"):
        text = gr.Textbox(label="text")
        voice = gr.Textbox(label="voice", value="")
        language = gr.Textbox(label="language", value="")
        seed = gr.Number(label="seed", value=None, precision=0)
        speech = gr.Audio(label="speech", type="filepath")
        take = gr.JSON(label="take")
        clip = gr.Audio(label="audio", type="filepath", sources=["upload"])
        clip_language = gr.Textbox(label="language", value="")
        transcript = gr.JSON(label="transcription")
        project = gr.Textbox(label="project")
        wait_seconds = gr.Number(label="wait_seconds", value=None)
        rendered = gr.File(label="audio")
        progress = gr.JSON(label="render")
        trigger = gr.Button(visible=False)
    trigger.click(speak, inputs=[text, voice, language, seed], outputs=[speech, take],
                  api_name=ENDPOINT_PREFIX + "speak", **hidden)
    trigger.click(transcribe, inputs=[clip, clip_language], outputs=transcript,
                  api_name=ENDPOINT_PREFIX + "transcribe", **hidden)
    trigger.click(render_project, inputs=[project, wait_seconds], outputs=[rendered, progress],
                  api_name=ENDPOINT_PREFIX + "render_project", **hidden)


def _render_status(project: Any) -> dict[str, Any]:
    render = project.render
    return {"project": project.title, "project_id": project.id, "state": render.state,
            "blocks_done": sum(b.status == "rendered" for b in project.blocks), "blocks_total": len(project.blocks),
            "seconds_left": render.seconds_left, "message": render.message}


# ---- Gradio's MCP server, narrowed -------------------------------------------------------------
def restrict(server: Any) -> None:
    """Make Gradio's MCP server (``blocks.mcp_server_obj``) offer exactly :data:`TOOLS`, and
    return audio and JSON the way an assistant can use them (module docstring).

    Also points Gradio's MCP temp folder (where a ``data:`` URI input is written) at the app's
    private upload folder, where Gradio's own check lets an input file be read from.
    """
    import gradio.mcp as gradio_mcp
    from gradio.utils import get_upload_folder

    server.api_info = server.blocks.get_api_info(all_endpoints=True)
    named = server.api_info["named_endpoints"]
    server.tool_to_endpoint = {
        server.tool_prefix + name: f"/{ENDPOINT_PREFIX}{name}" for name in TOOLS if f"/{ENDPOINT_PREFIX}{name}" in named
    }
    server.postprocess_output_data = functools.partial(tool_content, server)
    server.get_fn_description = functools.partial(describe, server)
    gradio_mcp.DEFAULT_TEMP_DIR = get_upload_folder()


def describe(server: Any, block_fn: Any, tool_name: str) -> tuple[str, dict[str, str]]:
    """Gradio's description of a tool without its hint about an ``upload_file_to_gradio`` tool,
    which this server does not offer (the parameter says what a file input takes)."""
    description, parameters = type(server).get_fn_description(server, block_fn, tool_name)
    hint = server._file_data_tool_description
    return description.replace(hint + ".", "").replace(hint, ""), parameters


def tool_content(server: Any, data: list[Any], root_url: str) -> list[Any]:
    """A tool's outputs as MCP content: an audio file as audio content (its bytes, base64), a
    dict or list as JSON text, nothing for an empty output; anything else as Gradio does it."""
    from gradio_client.utils import is_file_obj_with_meta
    from mcp import types

    content: list[Any] = []
    for item in data:
        item = getattr(item, "root", item)  # gr.JSON's output is a pydantic root model
        if item is None:
            continue
        if is_file_obj_with_meta(item):
            path = Path(item["path"])
            mime = mimetypes.guess_type(path.name)[0] or ""
            if mime.startswith("audio/") and path.is_file():
                mime = "audio/wav" if mime in ("audio/x-wav", "audio/wave") else mime
                data64 = base64.b64encode(path.read_bytes()).decode("ascii")
                content.append(types.AudioContent(type="audio", data=data64, mimeType=mime))
                continue
        if isinstance(item, (dict, list)):
            content.append(types.TextContent(type="text", text=json.dumps(item, ensure_ascii=False)))
            continue
        content.extend(type(server).postprocess_output_data(server, [item], root_url))
    return content


__all__ = ["ENDPOINT_PREFIX", "TOOLS", "McpToolError", "build", "caller_of", "restrict", "tool_content"]
