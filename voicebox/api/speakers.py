"""REST: the built-in voices (:mod:`voicebox.speakers`), listed beside a person's profiles.

``GET /speakers`` names them with the id to generate with (``speaker:<name>``, usable as
``profile_id`` of ``POST /generate``, and by name as the OpenAI route's ``voice``), and whether
the model follows style instructions (``instruct``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from ..services import Studio


class SpeakerOut(BaseModel):
    id: str = Field(examples=["speaker:vivian"], description="The `profile_id` to generate with.")
    name: str = Field(examples=["Vivian"])


class SpeakerList(BaseModel):
    items: list[SpeakerOut]
    takes_style: bool = Field(description="Whether these voices follow a style instruction (`instruct`).")
    model: str = Field(description="The CustomVoice model they come from (empty: none configured).")


def add_speaker_routes(router: APIRouter, studio: Studio) -> None:
    @router.get("/speakers", response_model=SpeakerList, tags=["profiles"], summary="Built-in voices")
    def speakers() -> dict[str, Any]:
        """Voices that need no samples: the named speakers of the CustomVoice model. Generate with
        `profile_id: "speaker:<name>"` and, where `takes_style` is true, an `instruct` such as
        "whispering" or "excited, faster"."""
        built_in = studio.speakers
        return {"items": [{"id": p.id, "name": p.name} for p in built_in.profiles()],
                "takes_style": built_in.takes_style, "model": built_in.source}
