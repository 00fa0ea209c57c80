"""REST routes for voice design (:mod:`voicebox.design`): describe, listen, keep one as a profile.

``POST /design`` makes the takes (a model call: it waits its turn for the model like a take),
``GET /design/{design_id}`` lists them, ``GET /design/{design_id}/takes/{take}`` plays one (WAV),
``POST /design/{design_id}/save`` keeps one as a profile. A design is the caller's own: another
person's id answers exactly like one that does not exist.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from ..design import MAX_DESCRIPTION, MAX_TAKES, MAX_TEXT, Design
from ..ids import utc_now
from .guards import request_owner
from .routes import caller, profile_out
from .schemas import Profile, error_responses

if TYPE_CHECKING:
    from ..services import Studio


class DesignIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "description": "A warm, low female voice in her fifties, calm, with a slight British accent.",
        "text": "Hello! This is how I sound when I read a story aloud.", "language": "English", "takes": 3}]})
    description: str = Field(description=f"The voice in words (up to {MAX_DESCRIPTION} characters).")
    text: str = Field("", description=f"What the takes say (up to {MAX_TEXT} characters); empty: a sample sentence.")
    language: str = Field("auto", description="`auto` or a language the model speaks.")
    takes: int = Field(3, description=f"How many takes to compare, 1 to {MAX_TAKES}.")
    seed: int | None = Field(None, description="Remakes the same takes; empty: random.")


class DesignTakeOut(BaseModel):
    take: int = Field(description="The take's number, from 1.")
    seed: int
    duration: float = Field(description="Seconds.")
    hit_cap: bool = Field(description="The model reached the length limit: this take may be cut off or noisy.")
    audio_url: str


class DesignOut(BaseModel):
    id: str
    description: str
    text: str
    language: str
    takes: list[DesignTakeOut]


class DesignSaveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    take: int = Field(description="The number of the take to keep, from 1.")
    name: str = Field(description="The new profile's name (unique among yours).")
    consent: bool = Field(False, description="You may use this voice (required where several people keep "
                                             "libraries; recorded with the time).")


def design_out(design: Design) -> dict[str, Any]:
    takes = [{"take": t.index + 1, "seed": t.seed, "duration": t.duration, "hit_cap": t.hit_cap,
              "audio_url": f"/design/{design.id}/takes/{t.index + 1}"} for t in design.takes]
    return {"id": design.id, "description": design.description, "text": design.text,
            "language": design.language, "takes": takes}


def add_design_routes(router: APIRouter, studio: Studio) -> None:
    tags = ["design"]

    @router.post("/design", status_code=201, response_model=DesignOut, tags=tags, summary="Design a voice from words",
                 responses=error_responses(422, 429, 503))
    def design(body: DesignIn, request: Request) -> dict[str, Any]:
        """Speaks `text` in the voice `description` describes, `takes` times with different seeds.
        Keep the one you like with `POST /design/{design_id}/save`; from then on it is a profile
        that voicebox clones like any recorded voice."""
        made = studio.designer.design(body.description, body.text, body.language, body.takes, body.seed,
                                      owner=request_owner(request), user=caller(studio, request))
        return design_out(made)

    @router.get("/design/{design_id}", response_model=DesignOut, tags=tags, summary="A design and its takes",
                responses=error_responses(404))
    def get_design(design_id: str, request: Request) -> dict[str, Any]:
        return design_out(studio.designer.get(design_id, owner=request_owner(request)))

    @router.get("/design/{design_id}/takes/{take}", response_class=FileResponse, tags=tags,
                summary="Play a take of a design (WAV)", responses={200: {"content": {"audio/wav": {}}},
                                                                    **error_responses(404, 422)})
    def take_audio(design_id: str, take: int, request: Request) -> FileResponse:
        chosen = studio.designer.get(design_id, owner=request_owner(request)).take(take)
        return FileResponse(chosen.path, media_type="audio/wav", filename=f"design-take-{take}.wav")

    @router.post("/design/{design_id}/save", status_code=201, response_model=Profile, tags=tags,
                 summary="Keep a take as a profile", responses=error_responses(404, 409, 422, 429))
    def save(design_id: str, body: DesignSaveIn, request: Request) -> dict[str, Any]:
        """The take becomes the new profile's first sample (the design's text its transcript) and
        the description its description."""
        profile = studio.designer.save(design_id, body.take, body.name, owner=request_owner(request),
                                       user=caller(studio, request), consent=utc_now() if body.consent else None)
        return profile_out(profile)
