"""Isolation (issue #16) over REST: two accounts, ana and bo, on one server (real speech: espeak-ng).

The walk reads the app's own OpenAPI schema, so a route added later cannot escape it: for every
route with an id in its path, bo asking for ana's id gets the very answer (status, type, body
but for the id) that an id which never existed gets; for every field that names a voice or a
profile in a body or query, the same; and no listing, search or statistic of bo's shows ana's.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from fastapi.testclient import TestClient

from tests.support.espeak_backend import EspeakBackend
from tests.support.rest import basic
from tests.support.studio import account_headers
from voicebox.api import create_api_app
from voicebox.config import Settings
from voicebox.services import Studio
from voicebox.store import new_id

WORDS = "The quick brown fox jumps over the lazy dog near the river bank."
SECRET = "Ana's secret line about the lighthouse."
#: Path parameters the walk fills in, and which of ana's records each names.
PATH_IDS = {"profile_id": "profile", "sample_id": "sample", "generation_id": "generation",
            "project_id": "project", "block_id": "block", "job_id": "job", "batch_id": "batch",
            "design_id": "design"}
#: Other path parameters: a value that is valid for ana's records.
PATH_OTHER = {"index": "0", "take": "1"}
WAV_PART = ("clip.wav", b"", "audio/wav")  # replaced by real audio in the test
#: Every route with a body, form or query field that names a profile (by id, or by name where it
#: is a "voice"): the request that puts a value there. Path ids are bo's own records, so only the
#: named profile can make the answer differ.
NAMED_FIELDS: dict[tuple[str, str], Callable[[str], dict[str, Any]]] = {
    ("GET", "/history"): lambda v: {"params": {"profile_id": v}},
    ("POST", "/generate"): lambda v: {"json": {"profile_id": v, "text": SECRET}},
    ("POST", "/score"): lambda v: {"files": {"file": WAV_PART}, "data": {"text": WORDS, "profile_id": v}},
    ("POST", "/v1/audio/speech"): lambda v: {"json": {"model": "tts-1", "input": SECRET, "voice": v}},
    ("POST", "/projects"): lambda v: {"json": {"title": "Borrowed", "voice": v}},
    ("POST", "/projects/import"): lambda v: {"files": {"file": ("a.txt", b"Hello there.", "text/plain")},
                                             "data": {"format": "text", "voice": v}},
    ("PUT", "/projects/{project_id}"): lambda v: {"json": {"voice": v}},
    ("POST", "/projects/{project_id}/blocks"): lambda v: {"json": {"text": "Hi.", "voice": v}},
    ("PUT", "/projects/{project_id}/blocks/{block_id}"): lambda v: {"json": {"voice": v}},
    ("POST", "/batch"): lambda v: {"json": {"items": [{"text": "Hi.", "voice": v}]}},
}
#: Fields that name a profile; a route whose schema has one (at any depth) must be in NAMED_FIELDS.
NAMING = {"profile_id", "voice"}
#: The app's client and each account's headers.
Server = tuple[TestClient, dict[str, dict[str, str]]]
STUDIO: dict[str, Studio] = {}  # the server's studio, for records no route makes without a model


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, shared_asr: Any) -> Server:
    data = tmp_path_factory.mktemp("isolation") / "data"
    settings = Settings(data_dir=data, quality="off", quotas="off", rate_limit="off")
    headers = account_headers(settings, ("ana", "bo"))
    studio = Studio(settings, tts=EspeakBackend(), asr=shared_asr)
    STUDIO["studio"] = studio
    return TestClient(create_api_app(studio, settings)), headers


def designed_for(studio: Studio, owner: str, wav: Path) -> str:
    """A voice design of ``owner``'s waiting to be kept, as the designer leaves one (the espeak
    backend has no VoiceDesign model; tests/test_design.py makes real ones)."""
    from voicebox.design import Design, DesignTake

    design = Design(new_id(), owner, "A calm, clear voice.", WORDS, "English")
    path = studio.designer._folder(design) / "take-1.wav"
    path.parent.mkdir(parents=True)
    path.write_bytes(wav.read_bytes())
    design.takes.append(DesignTake(0, 1, path, 3.0))
    studio.designer._keep(design)
    return design.id


@pytest.fixture(scope="module")
def ana(server: Server, espeak_wav: Path) -> dict[str, str]:
    """Ana's records, made through REST as ana; bo has a profile of the same name."""
    client, headers = server
    as_ana = headers["ana"]
    profile = client.post("/profiles", json={"name": "Ana Voice", "language": "English", "consent": True}, headers=as_ana)
    assert profile.status_code == 201, profile.text
    ids = {"profile": profile.json()["id"], "name": "Ana Voice"}
    with espeak_wav.open("rb") as handle:
        sample = client.post(f"/profiles/{ids['profile']}/samples", data={"reference_text": WORDS},
                             files={"file": ("a.wav", handle, "audio/wav")}, headers=as_ana)
    assert sample.status_code == 201, sample.text
    ids["sample"] = sample.json()["id"]
    take = client.post("/generate", json={"profile_id": ids["profile"], "text": SECRET}, headers=as_ana)
    assert take.status_code == 201, take.text
    ids["generation"] = take.json()["id"]
    project = client.post("/projects", json={"title": "Ana's book", "voice": ids["profile"],
                                             "blocks": [{"text": "First block."}, {"text": "Second block."}]},
                          headers=as_ana)
    assert project.status_code == 201, project.text
    ids["project"], ids["block"] = project.json()["id"], project.json()["blocks"][0]["id"]
    assert client.post(f"/projects/{ids['project']}/render", headers=as_ana).status_code == 200
    project_url = f"/projects/{ids['project']}"
    until(lambda: client.get(project_url, headers=as_ana).json()["render"]["state"] == "done")
    export = client.post(f"/projects/{ids['project']}/export", json={"format": "wav"}, headers=as_ana)
    assert export.status_code == 202, export.text
    ids["job"] = export.json()["id"]
    until(lambda: client.get(f"{project_url}/export/{ids['job']}", headers=as_ana).json()["state"] == "done")
    batch = client.post("/batch", json={"items": [{"text": "A line of ana's batch.", "voice": "Ana Voice"}]},
                        headers=as_ana)
    assert batch.status_code == 202, batch.text
    ids["batch"] = batch.json()["id"]
    until(lambda: client.get(f"/batch/{ids['batch']}", headers=as_ana).json()["state"] == "done")
    bo_profile = client.post("/profiles", json={"name": "Ana Voice", "consent": True}, headers=headers["bo"])
    assert bo_profile.status_code == 201, bo_profile.text  # names are unique per owner
    client.delete(f"/profiles/{bo_profile.json()['id']}", headers=headers["bo"])
    ids["design"] = designed_for(STUDIO["studio"], "ana", espeak_wav)
    return ids


@pytest.fixture(scope="module")
def bo(server: Server, espeak_wav: Path) -> dict[str, str]:
    """Bo's own voice and project (with a block), for the routes that also take a path id."""
    client, headers = server
    as_bo = headers["bo"]
    profile = client.post("/profiles", json={"name": "Bo Voice", "language": "English", "consent": True}, headers=as_bo)
    project = client.post("/projects", json={"title": "Bo's book", "voice": profile.json()["id"],
                                             "blocks": [{"text": "Bo's block."}]}, headers=as_bo)
    assert project.status_code == 201, project.text
    return {"profile_id": profile.json()["id"], "project_id": project.json()["id"],
            "block_id": project.json()["blocks"][0]["id"]}


def until(done: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


# ---- building requests from the schema -----------------------------------------------------
def resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def minimal(schema: dict[str, Any], spec: dict[str, Any]) -> Any:
    """The smallest value the schema accepts (required fields only), so a request passes
    validation and reaches the route."""
    schema = resolve(schema, spec)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if resolve(s, spec).get("type") != "null"]
            return minimal(options[0], spec)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {name: minimal(props[name], spec) for name in schema.get("required", [])}
    if kind == "array":
        return [minimal(schema["items"], spec) for _ in range(schema.get("minItems", 0))]
    if kind == "integer":
        return max(0, int(schema.get("minimum", 0)))
    if kind == "number":
        return float(schema.get("minimum", 1.0))
    if kind == "boolean":
        return False
    return "x"


def request_parts(op: dict[str, Any], spec: dict[str, Any], wav: bytes) -> dict[str, Any]:
    """``json=`` or ``files=``/``data=`` for a route's request body."""
    content = op.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        return {"json": minimal(content["application/json"]["schema"], spec)}
    if "multipart/form-data" in content:
        schema = resolve(content["multipart/form-data"]["schema"], spec)
        files, data = {}, {}
        for name in schema.get("required", []):
            prop = resolve(schema["properties"][name], spec)
            if prop.get("format") == "binary" or prop.get("contentMediaType"):
                files[name] = ("clip.wav", wav, "audio/wav")
            else:
                data[name] = str(minimal(prop, spec))
        return {"files": files, "data": data}
    return {}


def answer(response: Any, *secrets: str) -> tuple[int, str, str]:
    """What a client can tell from a response: status, type and body, with the ids or names it
    was asked about blanked (the messages quote them back)."""
    body = response.text
    for secret in secrets:
        body = body.replace(secret, "<asked>")
    return response.status_code, response.headers.get("content-type", ""), body


def shows(response: Any, ana: dict[str, str]) -> list[str]:
    """Which of ana's ids, names or words a response mentions."""
    text = response.text
    return [value for value in (*ana.values(), SECRET) if value and value in text]


# ---- the walk --------------------------------------------------------------------------------
def test_every_route_with_an_id_answers_bo_as_if_anas_did_not_exist(
    server: Server, ana: dict[str, str], espeak_wav: Path
) -> None:
    client, headers = server
    spec = client.get("/openapi.json", headers=headers["bo"]).json()
    wav = espeak_wav.read_bytes()
    before = {kind: client.get(url, headers=headers["ana"]).content for kind, url in owned_urls(ana).items()}
    walked = []
    for path, ops in spec["paths"].items():
        names = re.findall(r"{(\w+)}", path)
        if not names:
            continue
        for method, op in ops.items():
            unknown = [n for n in names if n not in PATH_IDS and n not in PATH_OTHER]
            assert not unknown, f"{method.upper()} {path}: the walk does not know {unknown}; add them"
            theirs = {n: ana[PATH_IDS[n]] for n in names if n in PATH_IDS}
            missing = {n: new_id() for n in theirs}
            parts = request_parts(op, spec, wav)

            def call(values: dict[str, str]) -> Any:
                url = path.format(**{**PATH_OTHER, **values})
                return client.request(method.upper(), url, headers=headers["bo"], **parts)

            got, expected = call(theirs), call(missing)
            assert got.status_code == 404, (method, path, got.status_code, got.text)
            assert answer(got, *theirs.values()) == answer(expected, *missing.values()), (method, path)
            walked.append(f"{method.upper()} {path}")
    assert len(walked) >= 30, walked
    after = {kind: client.get(url, headers=headers["ana"]).content for kind, url in owned_urls(ana).items()}
    assert after == before  # nothing bo sent changed or deleted anything of ana's


def owned_urls(ana: dict[str, str]) -> dict[str, str]:
    project = f"/projects/{ana['project']}"
    return {"profile": f"/profiles/{ana['profile']}", "sample": f"/profiles/samples/{ana['sample']}/audio",
            "generation": f"/history/{ana['generation']}", "audio": f"/audio/{ana['generation']}",
            "project": project, "export": f"{project}/export/{ana['job']}",
            "export file": f"{project}/export/{ana['job']}/file", "batch": f"/batch/{ana['batch']}",
            "batch zip": f"/batch/{ana['batch']}/download", "design": f"/design/{ana['design']}",
            "design take": f"/design/{ana['design']}/takes/1"}


def test_ana_herself_gets_her_records(server: Server, ana: dict[str, str]) -> None:
    client, headers = server
    for url in owned_urls(ana).values():
        assert client.get(url, headers=headers["ana"]).status_code == 200, url


def field_names(schema: dict[str, Any], spec: dict[str, Any], seen: frozenset[str] = frozenset()) -> set[str]:
    """Every property name in a schema, at any depth (through refs, arrays, unions)."""
    ref = schema.get("$ref", "")
    if ref in seen:
        return set()
    schema, seen = resolve(schema, spec), seen | {ref}
    names = set(schema.get("properties", {}))
    for sub in (*schema.get("properties", {}).values(), schema.get("items") or {}, *schema.get("anyOf", []),
                *schema.get("oneOf", []), *schema.get("allOf", [])):
        names |= field_names(sub, spec, seen)
    return names


def test_fields_naming_a_profile_answer_bo_as_if_anas_did_not_exist(
    server: Server, ana: dict[str, str], bo: dict[str, str], espeak_wav: Path
) -> None:
    client, headers = server
    spec = client.get("/openapi.json", headers=headers["bo"]).json()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            fields = {p["name"] for p in op.get("parameters", []) if p["in"] != "path"}
            for content in op.get("requestBody", {}).get("content", {}).values():
                fields |= field_names(content["schema"], spec)
            if NAMING & fields:
                route = (method.upper(), path)
                assert route in NAMED_FIELDS, f"{route} names a profile: add it to NAMED_FIELDS"
    wav = ("clip.wav", espeak_wav.read_bytes(), "audio/wav")
    for (method, path), build in NAMED_FIELDS.items():
        url = path.format(**bo)
        pairs = [(ana["profile"], new_id())]
        if path not in ("/history", "/generate", "/score"):  # a voice: a name works too
            pairs.append((ana["name"], "Nobody Voice"))
        for theirs, missing in pairs:

            def call(value: str) -> Any:
                parts = build(value)
                if "files" in parts:
                    parts["files"] = {k: wav if v is WAV_PART else v for k, v in parts["files"].items()}
                return client.request(method, url, headers=headers["bo"], **parts)

            got, expected = call(theirs), call(missing)
            assert got.status_code in (200, 404, 422), (method, path, got.status_code, got.text)
            assert answer(got, theirs) == answer(expected, missing), (method, path, got.text)
            assert not shows(got, {k: v for k, v in ana.items() if v != theirs}), (method, path)


def test_bo_lists_and_searches_none_of_anas(server: Server, ana: dict[str, str]) -> None:
    client, headers = server
    for url in ("/profiles", "/profiles?search=Ana", "/history", "/history?search=secret",
                f"/history?profile_id={ana['profile']}", "/history/stats", "/projects"):
        response = client.get(url, headers=headers["bo"])
        assert response.status_code == 200, url
        assert not shows(response, ana), (url, response.text)
    assert client.get("/history", headers=headers["bo"]).json()["total"] == 0
    assert json.loads(client.get("/history/stats", headers=headers["bo"]).text)["count"] == 0
    mine = client.get("/history?search=secret", headers=headers["ana"]).json()
    assert [item["id"] for item in mine["items"]] == [ana["generation"]]


def test_the_original_single_login_is_the_local_user(tmp_path: Path, shared_asr: Any) -> None:
    """VOICEBOX_AUTH (and VOICEBOX_API_TOKEN) were the one person of a server before accounts:
    they keep seeing the data they always saw (owner ""), also once accounts are added beside."""
    from voicebox.auth import login_owner

    settings = Settings(data_dir=tmp_path / "data", quality="off", quotas="off", rate_limit="off",
                        auth=("me", "my-password-1"), api_token="shared-token-123456",
                        users=(("ana", "ana-password-1"),))
    studio = Studio(settings, tts=EspeakBackend(), asr=shared_asr)
    before = studio.create_profile("From before accounts", consent="")  # made before consent was asked
    client = TestClient(create_api_app(studio, settings))
    me = basic("me", "my-password-1")
    for headers in (me, {"Authorization": "Bearer shared-token-123456"}):
        assert [p["id"] for p in client.get("/profiles", headers=headers).json()["items"]] == [before.id]
    ana = basic("ana", "ana-password-1")
    assert client.get("/profiles", headers=ana).json() == {"items": [], "total": 0}
    assert client.get(f"/profiles/{before.id}", headers=ana).status_code == 404
    assert [login_owner(settings, name) for name in ("me", "ana", None)] == ["", "ana", ""]
    assert login_owner(settings, "gone") == "gone"  # removed while logged in: never the local user's data
