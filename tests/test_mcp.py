"""The MCP server (issue #18), driven by the ``mcp`` package's own client against a running server.

One server with two accounts, ana and bo (so every MCP request must prove who it is), speaking
with espeak-ng (real, intelligible speech) and the session's Whisper. The tools are exactly the
four voicebox means to offer; ``speak`` returns real audio; ``transcribe`` hears JFK's words;
``render_project`` returns a project's MP3; each account sees and uses only its own voices and
projects; a request without valid credentials is refused before any tool runs, on every MCP
route. The guard's rules for public servers and for servers without accounts are checked on the
middleware itself (no second server needed).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("mcp")

from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamablehttp_client
from mcp.types import AudioContent, CallToolResult, TextContent

from tests.conftest import JFK_WORDS
from tests.support.espeak_backend import EspeakBackend
from tests.support.studio import account_headers, serve_app
from voicebox import audio
from voicebox.config import Settings
from voicebox.ids import utc_now
from voicebox.services import Studio
from voicebox.ui.mcp_guard import CALLER_KEY, McpCaller, McpGuard
from voicebox.ui.mcp_tools import TOOLS, McpToolError, caller_of

WORDS = "The quick brown fox jumps over the lazy dog near the river bank."
SPOKEN = "Hello from the assistant, speaking in a cloned voice."


class Server:
    """The running app, its studio and each account's ``Authorization`` header."""

    def __init__(self, url: str, studio: Studio, headers: dict[str, dict[str, str]]) -> None:
        self.url, self.studio, self.headers = url, studio, headers
        self.mcp = url + "gradio_api/mcp/"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, shared_asr: Any, espeak_wav: Path) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("mcp") / "data"
    settings = Settings(data_dir=data, quality="off", quotas="off", rate_limit="off")
    headers = account_headers(settings, ("ana", "bo"))
    studio = Studio(settings, tts=EspeakBackend(), asr=shared_asr)
    for owner in ("ana", "bo"):
        profile = studio.create_profile(f"{owner.title()} Voice", "", "English", owner=owner, consent=utc_now())
        studio.add_sample(profile.id, espeak_wav, WORDS, owner=owner)
    ana_voice = studio.find_profile("Ana Voice", owner="ana")
    studio.projects.create("Ana's Story", ana_voice.id, "English",
                           [{"text": "Once upon a time."}, {"text": "The end."}], owner="ana")
    served = serve_app(settings, studio)
    url = next(served)
    yield Server(url, studio, headers)
    next(served, None)


async def _session_call(url: str, headers: dict[str, str], calls: list[tuple[str, dict[str, Any]]]) -> Any:
    """List the tools, then make ``calls`` in one MCP session (streamable HTTP, as Gradio 6 prints)."""
    transport = streamablehttp_client(url, headers=headers, timeout=30, sse_read_timeout=120)
    async with transport as (read, write, _), ClientSession(read, write) as session:
        await session.initialize()
        tools = (await session.list_tools()).tools
        results = [await session.call_tool(name, arguments) for name, arguments in calls]
        return tools, results


def mcp(server: Server, who: str, *calls: tuple[str, dict[str, Any]]) -> tuple[list[Any], list[CallToolResult]]:
    return asyncio.run(_session_call(server.mcp, server.headers[who], list(calls)))


def text_of(result: CallToolResult) -> str:
    return "".join(c.text for c in result.content if isinstance(c, TextContent))


def json_of(result: CallToolResult) -> Any:
    assert not result.isError, text_of(result)
    texts = [c.text for c in result.content if isinstance(c, TextContent)]
    return json.loads(texts[-1])


def audio_of(result: CallToolResult) -> tuple[AudioContent, bytes]:
    assert not result.isError, text_of(result)
    found = [c for c in result.content if isinstance(c, AudioContent)]
    assert len(found) == 1, result.content
    return found[0], base64.b64decode(found[0].data)


def test_tools_are_exactly_the_four_with_descriptions_and_schemas(server: Server) -> None:
    tools, _ = mcp(server, "ana")
    assert sorted(t.name for t in tools) == sorted(TOOLS)
    by_name = {t.name: t for t in tools}
    for tool in tools:
        assert len(tool.description or "") > 40, tool.name
        assert tool.inputSchema["type"] == "object"
        for name, prop in tool.inputSchema["properties"].items():
            assert prop.get("description"), f"{tool.name}.{name} has no description"
    assert by_name["speak"].inputSchema["required"] == ["text"]
    assert set(by_name["speak"].inputSchema["properties"]) == {"text", "voice", "language", "seed"}
    assert by_name["transcribe"].inputSchema["required"] == ["audio"]
    assert "upload_file_to_gradio" not in by_name["transcribe"].description  # a tool we do not offer
    assert by_name["render_project"].inputSchema["required"] == ["project"]
    assert by_name["list_voices"].inputSchema["properties"] == {}
    # the schema route (the "Use via API" page's MCP tab) lists the same four, with credentials
    schema = httpx.get(server.url + "gradio_api/mcp/schema", headers=server.headers["ana"], timeout=10)
    assert sorted(t["name"] for t in schema.json()) == sorted(TOOLS)
    # ... and to the UI's login cookie, which never runs a tool (a web page could make a browser send it)
    with httpx.Client(base_url=server.url, timeout=10) as browser:
        assert browser.post("/login", data={"username": "ana", "password": "ana-password-1"}).status_code == 200
        assert len(browser.get("/gradio_api/mcp/schema").json()) == len(TOOLS)
        call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "list_voices", "arguments": {}}}
        accept = {"Accept": "application/json, text/event-stream"}
        assert browser.post("/gradio_api/mcp/", json=call, headers=accept).status_code == 401


def test_speak_returns_real_speech_and_keeps_the_take_in_the_callers_history(server: Server) -> None:
    _, (voices, spoken, heard) = mcp(
        server, "ana",
        ("list_voices", {}),
        ("speak", {"text": SPOKEN, "voice": "ana voice", "seed": 7}),
        ("transcribe", {"audio": "/etc/passwd"}),  # a server path is not a clip
    )
    listed = json_of(voices)
    assert [v for v in listed["voices"] if not v["built_in"]] == [
        {"name": "Ana Voice", "id": voices_id(server, "ana"), "language": "English", "description": "", "samples": 1,
         "built_in": False}]
    # then the built-in voices (the released CustomVoice model's, named before it is downloaded)
    assert [v["id"] for v in listed["voices"] if v["built_in"]][:2] == ["speaker:aiden", "speaker:dylan"]
    assert listed["count"] == len(listed["voices"]) and listed["built_in_takes_style"] is True
    content, wav = audio_of(spoken)
    assert content.mimeType == "audio/wav"
    samples, rate = sf.read(io.BytesIO(wav), dtype="float32")
    assert rate == audio.MODEL_SAMPLE_RATE and samples.ndim == 1
    assert len(samples) / rate > 1.5
    assert float(np.sqrt(np.mean(samples**2))) > 0.01  # speech, not silence
    take = json_of(spoken)
    assert take["voice"] == "Ana Voice" and take["seed"] == 7 and take["status"] == "ok"
    assert server.studio.get_generation(take["generation_id"], owner="ana").text == SPOKEN
    assert take["generation_id"] not in {g.id for g in server.studio.list_history(owner="bo")["items"]}
    assert heard.isError and "url" in text_of(heard).lower() and "root:" not in text_of(heard)
    # the spoken audio goes back in as a data: URI and Whisper hears the words
    data_uri = "data:audio/wav;base64," + base64.b64encode(wav).decode("ascii")
    _, (again,) = mcp(server, "ana", ("transcribe", {"audio": data_uri, "language": "English"}))
    assert {"hello", "cloned", "voice"} <= set(_words(json_of(again)["text"]))


def voices_id(server: Server, owner: str) -> str:
    return server.studio.find_profile(f"{owner.title()} Voice", owner=owner).id


def _words(text: str) -> list[str]:
    return "".join(c if c.isalnum() or c.isspace() else " " for c in text.lower()).split()


def test_transcribe_hears_jfk(server: Server, jfk_path: Path) -> None:
    data_uri = "data:audio/flac;base64," + base64.b64encode(jfk_path.read_bytes()).decode("ascii")
    _, (result,) = mcp(server, "bo", ("transcribe", {"audio": data_uri}))
    found = json_of(result)
    assert _words(found["text"]) == _words(JFK_WORDS)
    assert found["language"] == "en" and 10 < found["duration"] < 12
    assert found["segments"] and found["segments"][0]["start"] >= 0


def test_render_project_returns_the_projects_mp3(server: Server) -> None:
    _, (result,) = mcp(server, "ana", ("render_project", {"project": "ana's story", "wait_seconds": 60}))
    content, mp3 = audio_of(result)
    assert content.mimeType == "audio/mpeg"
    samples, rate = audio.decode(mp3)
    assert 1.0 < len(samples) / rate < 15 and float(np.abs(samples).max()) > 0.05
    status = json_of(result)
    assert status["state"] == "done" and status["blocks_done"] == status["blocks_total"] == 2


def test_each_account_sees_and_uses_only_its_own_voices_and_projects(server: Server) -> None:
    ana_id = voices_id(server, "ana")
    _, (voices, by_name, by_id, project) = mcp(
        server, "bo",
        ("list_voices", {}),
        ("speak", {"text": "Borrowed.", "voice": "Ana Voice"}),
        ("speak", {"text": "Borrowed.", "voice": ana_id}),
        ("render_project", {"project": "Ana's Story", "wait_seconds": 0}),
    )
    assert [v["name"] for v in json_of(voices)["voices"] if not v["built_in"]] == ["Bo Voice"]
    for refused in (by_name, by_id):
        assert refused.isError and "No voice named" in text_of(refused)
        assert "Bo Voice" in text_of(refused)  # what bo may use, never ana's
    assert project.isError and "No project named" in text_of(project)
    assert "There are no projects yet" in text_of(project)  # bo's list: empty, never ana's titles
    assert not [g for g in server.studio.list_history(owner="ana")["items"] if g.text == "Borrowed."]
    # Basic credentials work the same way and reach ana's library, over the SSE transport too
    basic = {"Authorization": "Basic " + base64.b64encode(b"ana:ana-password-1").decode()}
    mine = asyncio.run(_sse_call(server.mcp + "sse", basic, "list_voices", {}))
    assert [v["name"] for v in json_of(mine)["voices"] if not v["built_in"]] == ["Ana Voice"]


def test_render_project_says_why_blocks_failed(server: Server) -> None:
    studio = server.studio
    silent = studio.create_profile("Silent", "", "English", owner="bo", consent=utc_now())  # no samples
    draft = studio.projects.create("Bo's Draft", silent.id, "English", [{"text": "Nothing to say."}], owner="bo")
    try:
        _, (result,) = mcp(server, "bo", ("render_project", {"project": "bo's draft", "wait_seconds": 60}))
        status = json_of(result)
        assert not [c for c in result.content if isinstance(c, AudioContent)]
        assert status["blocks_done"] == 0 and status["blocks_total"] == 1
        assert "1 block(s) failed, the first because:" in status["message"] and "no samples" in status["message"]
    finally:
        studio.projects.delete(draft.id, owner="bo")
        studio.delete_profile(silent.id, owner="bo")


async def _sse_call(url: str, headers: dict[str, str], name: str, arguments: dict[str, Any]) -> CallToolResult:
    """One call over the older SSE transport (``/gradio_api/mcp/sse``), which some clients still use."""
    async with sse_client(url, headers=headers, timeout=30) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        return await session.call_tool(name, arguments)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer vb_not-a-token"},
                                     {"Authorization": "Basic " + base64.b64encode(b"ana:wrong").decode()}],
                         ids=["none", "bad-token", "wrong-password"])
def test_without_valid_credentials_every_mcp_route_is_refused(server: Server, headers: dict[str, str]) -> None:
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "list_voices", "arguments": {}}}
    accept = {"Accept": "application/json, text/event-stream", **headers}
    for method, path, body in [("POST", "", call), ("GET", "sse", None), ("POST", "messages/?session_id=x", call),
                               ("GET", "schema", None), ("GET", "", None)]:
        answer = httpx.request(method, server.mcp + path, json=body, headers=accept, timeout=10)
        assert answer.status_code == 401, (path, answer.text)
        assert "Authentication required" in answer.json()["detail"]
        assert ("www-authenticate" in answer.headers) == (path != "schema")  # no password prompt on the docs page
    with pytest.raises(Exception):  # noqa: B017 - the client's own error for a 401, whatever its class
        asyncio.run(_session_call(server.mcp, headers, []))


# ---- the guard's rules, on the middleware itself ------------------------------------------------
async def _through_guard(
    settings: Settings, headers: dict[str, str], body: bytes = b"{}", root_path: str = ""
) -> tuple[int, Any]:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope.get(CALLER_KEY))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    guard = McpGuard(app, settings)
    transport = httpx.ASGITransport(app=guard, root_path=root_path)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        answer = await client.post(root_path + "/gradio_api/mcp/", headers=headers, content=body)
    return answer.status_code, (seen[0] if seen else answer.json()["detail"])


def test_public_servers_want_an_account_and_private_ones_are_the_local_user(tmp_path: Path) -> None:
    for public in ({"anonymous": True}, {"hf_sign_in": True}):
        status, detail = asyncio.run(_through_guard(Settings(data_dir=tmp_path / "p", **public), {}))
        assert status == 401 and "Authentication required" in detail
    # Gradio mounted under a prefix: the same route, the same rule
    assert asyncio.run(_through_guard(Settings(data_dir=tmp_path / "p", anonymous=True), {}, root_path="/ui"))[0] == 401
    status, caller = asyncio.run(_through_guard(Settings(data_dir=tmp_path / "local"), {}))
    assert status == 200 and caller == McpCaller("", "")
    token = Settings(data_dir=tmp_path / "token", api_token="shared-secret-token")
    assert asyncio.run(_through_guard(token, {}))[0] == 401
    status, caller = asyncio.run(_through_guard(token, {"Authorization": "Bearer shared-secret-token"}))
    assert status == 200 and caller.owner == ""  # the shared token is the server's original user


def test_a_tool_never_takes_an_mcp_request_the_guard_did_not_let_in_for_the_local_user() -> None:
    """Defence in depth: were the guard missing, an MCP request carries no caller, and the tools
    refuse it rather than falling back to the local user's library (what Gradio's request would be)."""
    ctx: Any = SimpleNamespace(owner=lambda request: pytest.fail("fell back to the page's visitor"))
    stray = SimpleNamespace(scope={"type": "http", "path": "/gradio_api/mcp/", "root_path": ""})
    with pytest.raises(McpToolError, match="not authenticated"):
        caller_of(ctx, stray)
    let_in = SimpleNamespace(scope={"path": "/gradio_api/mcp/", CALLER_KEY: McpCaller("ana", "ana")})
    assert caller_of(ctx, let_in) == McpCaller("ana", "ana")


def test_a_body_over_the_upload_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    small = Settings(data_dir=tmp_path / "small", max_upload_mb=0.01)  # ~10 kB of audio, ~80 kB as JSON
    assert asyncio.run(_through_guard(small, {}, b"x" * 60_000))[0] == 200
    status, detail = asyncio.run(_through_guard(small, {}, b"x" * 100_000))
    assert status == 413 and "VOICEBOX_MAX_UPLOAD_MB" in detail
