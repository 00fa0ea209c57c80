"""REST routes for the quality gate and sentence-level takes.

``POST /history/{id}/chunks/{index}/retake`` makes a new take of one sentence of a saved take,
``PUT /history/{id}/chunks/{index}`` chooses which take is used (the previous version comes back
the same way), and ``POST /score`` runs the gate's checks on any clip. Kept apart from the main
routes so that those stay the plain record CRUD they are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, File, Form, Path, Request, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from .guards import request_owner
from .routes import GenerationId, check_id, generation_out, read_upload
from .schemas import Generation, ScoreOut, error_responses

if TYPE_CHECKING:
    from ..services import Studio

SentenceIndex = Annotated[int, Path(description="The sentence's 0-based index in the take.", ge=0)]


class SentenceRetake(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{}, {"text": "Ships passed safely.", "seed": 7}]}
    )
    text: str | None = Field(None, description="New words for this sentence; default: the same words.")
    seed: int | None = Field(None, description="Default: a new random seed.")
    temperature: float | None = Field(None, description="0.05-2.0; default: the take's.")
    top_k: int | None = Field(None, description="1-500")
    top_p: float | None = Field(None, description="0.05-1.0")
    repetition_penalty: float | None = Field(None, description="1.0-2.0")


class TakeChoice(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"take": 0}]})
    take: int = Field(ge=0, description="The take to use (an index into the sentence's `takes`).")


def add_sentence_routes(router: APIRouter, studio: "Studio") -> None:
    @router.post(
        "/history/{generation_id}/chunks/{index}/retake",
        response_model=Generation,
        tags=["history"],
        responses=error_responses(404, 422, 503),
        summary="Make a new take of one sentence",
    )
    def retake(generation_id: GenerationId, index: SentenceIndex, request: Request,
               body: SentenceRetake | None = None) -> dict[str, Any]:
        """The new take is used at once; the other sentences' audio is unchanged, and every earlier
        take stays in `takes` (choose it again with `PUT /history/{id}/chunks/{index}`)."""
        options = (body or SentenceRetake()).model_dump(exclude_none=True)
        record = studio.retake_sentence(check_id(generation_id, "Generation"), index,
                                        owner=request_owner(request), **options)
        return generation_out(record)

    @router.put(
        "/history/{generation_id}/chunks/{index}",
        response_model=Generation,
        tags=["history"],
        responses=error_responses(404, 422),
        summary="Choose which take of a sentence is used",
    )
    def choose(generation_id: GenerationId, index: SentenceIndex, body: TakeChoice,
               request: Request) -> dict[str, Any]:
        return generation_out(studio.choose_take(check_id(generation_id, "Generation"), index, body.take,
                                                 owner=request_owner(request)))

    @router.post(
        "/score",
        response_model=ScoreOut,
        tags=["transcribe"],
        responses=error_responses(404, 413, 415, 422, 503),
        summary="Check any clip the way each sentence of a take is checked",
    )
    def score(
        request: Request,
        file: Annotated[UploadFile, File(description="Any supported audio format.")],
        text: Annotated[str, Form(description="The words the clip should say.")],
        profile_id: Annotated[str | None, Form(description="Also compare the voice with this profile's.")] = None,
        language: Annotated[str | None, Form(description="Default: the profile's, else detected.")] = None,
    ) -> dict[str, Any]:
        if profile_id:
            check_id(profile_id, "Profile")
        return studio.score_clip(read_upload(file), text, profile_id or None, language or None,
                                 owner=request_owner(request))
