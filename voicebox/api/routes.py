"""voicebox's own REST routes: profiles, samples, generation, history, audio, transcription, models.

Each route only translates HTTP to a :class:`voicebox.services.Studio` call and back, so the UI
and the API share one store, one model lock and one set of rules. Two choices worth knowing:

* **Blocking work runs in the thread pool.** Model calls take seconds to minutes, so those
  endpoints are plain ``def`` functions (FastAPI runs them in its worker threads); the engines
  serialise model use with one lock, so parallel requests queue instead of colliding.
* **Ids are validated at the edge**: anything but 32 lowercase hex digits is a 404, so path
  tricks (``../``, absolute paths, encoded separators) never reach the file system.
* **Every route is its caller's** (:func:`~voicebox.api.guards.request_owner`): it passes the
  caller's owner to the studio, which answers another person's id exactly like a missing one.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import FileResponse, Response

from .. import take_effects
from ..auth import auth_required, check_credentials
from ..config import Settings
from ..errors import NotFound
from ..ids import utc_now
from ..quotas import address_of
from ..records import Generation as GenerationRecord
from ..records import Profile as ProfileRecord
from ..records import Sample as SampleRecord
from .guards import current_user, request_owner
from .schemas import (
    EXAMPLE_ID,
    AudioFormat,
    GenerateRequest,
    Generation,
    GenerationList,
    Health,
    HistoryStats,
    ModelLoad,
    ModelsStatus,
    ModelUnload,
    Profile,
    ProfileCreate,
    ProfileDetail,
    ProfileList,
    ProfileUpdate,
    Sample,
    SampleUpdate,
    Transcript,
    error_responses,
)

if TYPE_CHECKING:
    from ..services import Studio

ID_RE = re.compile(r"[0-9a-f]{32}")
ProfileId = Annotated[str, Path(description="Profile id (32 lowercase hex digits).", examples=[EXAMPLE_ID])]
SampleId = Annotated[str, Path(description="Sample id (32 lowercase hex digits).", examples=[EXAMPLE_ID])]
GenerationId = Annotated[
    str, Path(description="Generation id (32 lowercase hex digits).", examples=[EXAMPLE_ID])
]


def check_id(value: str, what: str) -> str:
    """Refuse anything that is not one of our ids before it reaches the store or a path."""
    if not ID_RE.fullmatch(value or ""):
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise NotFound(f"{what} {shown!r} does not exist.")
    return value


def caller(studio: "Studio", request: Request) -> str:
    """Whose quotas a request uses (:meth:`voicebox.quotas.Quotas.caller`): its account, a guest's
    address on a public server, else ``""`` (the one user)."""
    user = current_user(request)
    return studio.quotas.caller(user.name if user else None, address_of(request))


def sample_out(record: SampleRecord) -> dict[str, Any]:
    """A sample as the API shows it: the internal file path replaced by its URL."""
    out = {k: v for k, v in record.to_dict().items() if k not in ("file", "owner")}
    out["audio_url"] = f"/profiles/samples/{record.id}/audio"
    return out


def profile_out(profile: ProfileRecord, with_samples: bool = False) -> dict[str, Any]:
    """A profile as the API shows it; its samples (with their URLs) only where it is read whole."""
    out = profile.to_dict()
    del out["owner"]  # the caller's own name: records of anyone else never reach here
    out["samples"] = [sample_out(s) for s in profile.samples]
    if not with_samples:
        del out["samples"]
    return out


def generation_out(record: GenerationRecord) -> dict[str, Any]:
    """A generation as the API shows it: the internal file paths replaced by ``audio_url``, each
    take's scores as ``{check: number}`` with the full ``checks`` beside them."""
    out = {k: v for k, v in record.to_dict().items() if k not in ("file", "owner")}
    out["audio_url"] = f"/audio/{record.id}"
    for chunk in out["chunks"]:
        for take in chunk["takes"]:
            stored = take.pop("scores") or {}
            take.pop("file", None)
            take["checks"] = stored.get("checks", [])
            take["heard"] = stored.get("heard", "")
            take["scores"] = {c["name"]: c["value"] for c in take["checks"]}
    return out


def read_upload(file: UploadFile) -> bytes:
    """The uploaded bytes (the route already capped the body; ``Studio`` checks the size again)."""
    return file.file.read()


def add_system_routes(router: APIRouter, studio: "Studio", settings: Settings) -> None:
    @router.get(
        "/health",
        response_model=Health,
        response_model_exclude_unset=True,
        tags=["system"],
        summary="Status, version and loaded models",
    )
    def health(request: Request) -> dict[str, Any]:
        """Open even when a login is set (for load balancers), but then, without credentials,
        it answers only ``status``, ``version`` and ``auth_required``."""
        info = studio.health()
        required = auth_required(settings)
        if required and not check_credentials(settings, request.headers.get("authorization")):
            return {"status": info["status"], "version": info["version"], "auth_required": True}
        return {**info, "auth_required": required}


def add_profile_routes(router: APIRouter, studio: "Studio") -> None:
    @router.post(
        "/profiles",
        status_code=201,
        response_model=Profile,
        tags=["profiles"],
        responses=error_responses(409, 422, 429),
        summary="Create a voice profile",
    )
    def create_profile(body: ProfileCreate, request: Request) -> dict[str, Any]:
        return profile_out(studio.create_profile(body.name, body.description, body.language,
                                                 owner=request_owner(request), user=caller(studio, request),
                                                 consent=utc_now() if body.consent else None))

    @router.get(
        "/profiles", response_model=ProfileList, tags=["profiles"], summary="List and search profiles"
    )
    def list_profiles(
        request: Request,
        search: Annotated[str | None, Query(description="Part of the name or description.")] = None,
        limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        page = studio.list_profiles(search, limit, offset, owner=request_owner(request))
        return {"items": [profile_out(p) for p in page["items"]], "total": page["total"]}

    @router.get(
        "/profiles/{profile_id}",
        response_model=ProfileDetail,
        tags=["profiles"],
        responses=error_responses(404),
        summary="A profile with its samples",
    )
    def get_profile(profile_id: ProfileId, request: Request) -> dict[str, Any]:
        profile = studio.get_profile(check_id(profile_id, "Profile"), owner=request_owner(request))
        return profile_out(profile, with_samples=True)

    @router.put(
        "/profiles/{profile_id}",
        response_model=Profile,
        tags=["profiles"],
        responses=error_responses(404, 409, 422),
        summary="Change a profile (only the fields given)",
    )
    def update_profile(profile_id: ProfileId, body: ProfileUpdate, request: Request) -> dict[str, Any]:
        changes = body.model_dump(exclude_unset=True)
        owner = request_owner(request)
        return profile_out(studio.update_profile(check_id(profile_id, "Profile"), owner=owner, **changes))

    @router.delete(
        "/profiles/{profile_id}",
        status_code=204,
        response_class=Response,
        tags=["profiles"],
        responses=error_responses(404),
        summary="Delete a profile and its samples (history stays)",
    )
    def delete_profile(profile_id: ProfileId, request: Request) -> Response:
        studio.delete_profile(check_id(profile_id, "Profile"), owner=request_owner(request))
        return Response(status_code=204)


def add_sample_routes(router: APIRouter, studio: "Studio") -> None:
    @router.post(
        "/profiles/{profile_id}/samples",
        status_code=201,
        response_model=Sample,
        tags=["samples"],
        responses=error_responses(404, 409, 413, 415, 422, 429),
        summary="Upload a voice sample",
    )
    def add_sample(
        request: Request,
        profile_id: ProfileId,
        file: Annotated[
            UploadFile, File(description="WAV, FLAC, MP3, OGG/Opus, M4A/AAC or WebM; 1-30 s of speech.")
        ],
        reference_text: Annotated[
            str | None, Form(description="What the sample says; omit it to transcribe with Whisper.")
        ] = None,
    ) -> dict[str, Any]:
        check_id(profile_id, "Profile")
        user = caller(studio, request)
        return sample_out(studio.add_sample(profile_id, read_upload(file), reference_text,
                                            owner=request_owner(request), user=user))

    @router.get(
        "/profiles/{profile_id}/samples",
        response_model=list[Sample],
        tags=["samples"],
        responses=error_responses(404),
        summary="A profile's samples",
    )
    def list_samples(profile_id: ProfileId, request: Request) -> list[dict[str, Any]]:
        samples = studio.list_samples(check_id(profile_id, "Profile"), owner=request_owner(request))
        return [sample_out(s) for s in samples]

    @router.put(
        "/profiles/samples/{sample_id}",
        response_model=Sample,
        tags=["samples"],
        responses=error_responses(404),
        summary="Correct a sample's reference text",
    )
    def update_sample(sample_id: SampleId, body: SampleUpdate, request: Request) -> dict[str, Any]:
        return sample_out(studio.update_sample_text(check_id(sample_id, "Sample"), body.reference_text,
                                                    owner=request_owner(request)))

    @router.delete(
        "/profiles/samples/{sample_id}",
        status_code=204,
        response_class=Response,
        tags=["samples"],
        responses=error_responses(404),
        summary="Delete a sample and its audio",
    )
    def delete_sample(sample_id: SampleId, request: Request) -> Response:
        studio.delete_sample(check_id(sample_id, "Sample"), owner=request_owner(request))
        return Response(status_code=204)

    @router.get(
        "/profiles/samples/{sample_id}/audio",
        response_class=FileResponse,
        tags=["samples"],
        responses={200: {"content": {"audio/wav": {}}}, **error_responses(404)},
        summary="A sample's cleaned audio",
    )
    def sample_audio(sample_id: SampleId, request: Request) -> FileResponse:
        path = studio.sample_path(check_id(sample_id, "Sample"), owner=request_owner(request))
        return FileResponse(
            path, media_type="audio/wav", filename=f"{sample_id}.wav", content_disposition_type="inline"
        )


def add_generation_routes(router: APIRouter, studio: "Studio") -> None:
    @router.post(
        "/generate",
        status_code=201,
        response_model=Generation,
        tags=["generate"],
        responses=error_responses(404, 422, 429, 503),
        summary="Speak text in a profile's voice",
    )
    def generate(body: GenerateRequest, request: Request) -> dict[str, Any]:
        """Blocks until the audio is saved; the record's ``audio_url`` serves it."""
        return generation_out(studio.generate(body.request(), owner=request_owner(request),
                                              user=caller(studio, request)))

    @router.get(
        "/history", response_model=GenerationList, tags=["history"], summary="Saved generations, newest first"
    )
    def list_history(
        request: Request,
        search: Annotated[str | None, Query(description="Part of the text or profile name.")] = None,
        profile_id: Annotated[str | None, Query(description="Only this profile's generations.")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        page = studio.list_history(search, profile_id, limit, offset, owner=request_owner(request))
        return {"items": [generation_out(r) for r in page["items"]], "total": page["total"]}

    @router.get("/history/stats", response_model=HistoryStats, tags=["history"], summary="Counts and seconds")
    def history_stats(request: Request) -> dict[str, Any]:
        return studio.history_stats(owner=request_owner(request))

    @router.get(
        "/history/{generation_id}",
        response_model=Generation,
        tags=["history"],
        responses=error_responses(404),
        summary="One generation",
    )
    def get_generation(generation_id: GenerationId, request: Request) -> dict[str, Any]:
        return generation_out(studio.get_generation(check_id(generation_id, "Generation"),
                                                    owner=request_owner(request)))

    @router.delete(
        "/history/{generation_id}",
        status_code=204,
        response_class=Response,
        tags=["history"],
        responses=error_responses(404),
        summary="Delete a generation and its audio",
    )
    def delete_generation(generation_id: GenerationId, request: Request) -> Response:
        take_effects.delete_take(studio, check_id(generation_id, "Generation"), owner=request_owner(request))
        return Response(status_code=204)

    @router.get(
        "/audio/{generation_id}",
        response_class=Response,
        tags=["audio"],
        summary="A generation's audio",
        responses={
            200: {"content": {m: {} for m in ("audio/wav", "audio/flac", "audio/mpeg", "audio/ogg")}},
            **error_responses(404, 422),
        },
    )
    def generation_audio(
        generation_id: GenerationId,
        request: Request,
        fmt: Annotated[
            AudioFormat, Query(alias="format", description="Stored as WAV; others are converted.")
        ] = "wav",
    ) -> Response:
        check_id(generation_id, "Generation")
        record = studio.get_generation(generation_id, owner=request_owner(request))
        if fmt == "wav":  # served from disk, with HTTP range support for seeking players
            return FileResponse(
                take_effects.played_file(studio, record),  # with its effect, if it has one
                media_type="audio/wav",
                filename=f"{generation_id}.wav",
                content_disposition_type="inline",
            )
        data, mime = take_effects.played_audio(studio, record, fmt)
        return Response(
            data,
            media_type=mime,
            headers={"Content-Disposition": f'inline; filename="{generation_id}.{fmt}"'},
        )


def add_tool_routes(router: APIRouter, studio: "Studio") -> None:
    @router.post(
        "/transcribe",
        response_model=Transcript,
        tags=["transcribe"],
        responses=error_responses(413, 415, 422, 503),
        summary="Speech to text (Whisper)",
    )
    def transcribe(
        file: Annotated[UploadFile, File(description="Any supported audio format, any length.")],
        language: Annotated[
            str | None, Form(description="Language hint, e.g. `en` or `English`; omit to detect.")
        ] = None,
    ) -> dict[str, Any]:
        return studio.transcribe(read_upload(file), language)

    @router.get("/models", response_model=ModelsStatus, tags=["models"], summary="What is loaded, where")
    def models() -> dict[str, Any]:
        return studio.model_status()

    @router.post(
        "/models/load",
        response_model=ModelsStatus,
        tags=["models"],
        responses=error_responses(422, 503),
        summary="Load a model now (otherwise it loads on first use)",
    )
    def load_model(body: ModelLoad) -> dict[str, Any]:
        return studio.load_model(body.model, body.size)

    @router.post(
        "/models/unload", response_model=ModelsStatus, tags=["models"], summary="Free a model's memory"
    )
    def unload_model(body: ModelUnload) -> dict[str, Any]:
        return studio.unload_model(body.model)
