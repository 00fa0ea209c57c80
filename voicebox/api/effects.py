"""REST routes for effects: the presets, a take's effect (preview, set, remove), a voice's default.

``PUT /history/{id}/effects`` applies or changes a take's effect and ``DELETE`` removes it (the
clean take comes back byte for byte); ``POST /history/{id}/effects/preview`` answers the start of
the take through a chain without storing anything; ``PUT``/``DELETE /profiles/{id}/effects`` set
or clear the chain new takes of a voice get. Each route finds the caller's record first
(:mod:`voicebox.take_effects`), so another owner's id gets the same 404 as a missing one
whatever the body says. The use-cases live in :mod:`voicebox.take_effects`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .. import take_effects
from ..effects import describe
from ..projects.block_effects import set_block_effect
from .effect_schemas import EffectBody, plain
from .guards import request_owner
from .projects import BlockId, ProjectId, ProjectOut, project_out
from .routes import GenerationId, ProfileId, check_id, generation_out, profile_out
from .schemas import Generation, Profile, error_responses

if TYPE_CHECKING:
    from ..services import Studio


def add_effect_routes(router: APIRouter, studio: Studio) -> None:
    @router.get("/effects", tags=["effects"], summary="Effect presets and every setting's range")
    def presets() -> dict[str, Any]:
        return describe()

    @router.put(
        "/history/{generation_id}/effects",
        response_model=Generation,
        tags=["effects"],
        responses=error_responses(404, 422),
        summary="Apply or change a take's effect",
    )
    def set_effect(generation_id: GenerationId, body: EffectBody, request: Request) -> dict[str, Any]:
        """The clean take is kept; `GET /audio/{id}` then serves the processed audio. `"none"` removes it."""
        record = take_effects.set_effect(studio, check_id(generation_id, "Generation"), plain(body.effects),
                                         owner=request_owner(request))
        return generation_out(record)

    @router.delete(
        "/history/{generation_id}/effects",
        response_model=Generation,
        tags=["effects"],
        responses=error_responses(404),
        summary="Remove a take's effect (the clean take plays again)",
    )
    def remove_effect(generation_id: GenerationId, request: Request) -> dict[str, Any]:
        record = take_effects.remove_effect(studio, check_id(generation_id, "Generation"),
                                            owner=request_owner(request))
        return generation_out(record)

    @router.post(
        "/history/{generation_id}/effects/preview",
        response_class=Response,
        tags=["effects"],
        responses={200: {"content": {"audio/wav": {}}}, **error_responses(404, 422)},
        summary="Hear the start of a take through an effect, without storing it",
    )
    def preview(generation_id: GenerationId, body: EffectBody, request: Request) -> Response:
        data = take_effects.preview(studio, check_id(generation_id, "Generation"), plain(body.effects),
                                    owner=request_owner(request))
        return Response(data, media_type="audio/wav", headers={"Cache-Control": "no-store"})

    @router.put(
        "/projects/{project_id}/blocks/{block_id}/effects",
        response_model=ProjectOut,
        tags=["effects"],
        responses=error_responses(404, 422),
        summary="Set a project block's effect",
    )
    def set_block(project_id: ProjectId, block_id: BlockId, body: EffectBody, request: Request) -> dict[str, Any]:
        """Kept with the block for every take that renders it, and applied to its current take at
        once without re-rendering (the clean take is kept); `"none"` removes it. Exports use it."""
        project = set_block_effect(studio, check_id(project_id, "Project"), check_id(block_id, "Block"),
                                   plain(body.effects), owner=request_owner(request))
        return project_out(project)

    @router.put(
        "/profiles/{profile_id}/effects",
        response_model=Profile,
        tags=["effects"],
        responses=error_responses(404, 422),
        summary="Set the effect new takes of a voice get",
    )
    def set_default(profile_id: ProfileId, body: EffectBody, request: Request) -> dict[str, Any]:
        """Takes whose request names effects (`"none"` included) keep theirs; takes made before keep theirs."""
        profile = take_effects.set_voice_default(studio, check_id(profile_id, "Profile"), plain(body.effects),
                                                 owner=request_owner(request))
        return profile_out(profile)

    @router.delete(
        "/profiles/{profile_id}/effects",
        response_model=Profile,
        tags=["effects"],
        responses=error_responses(404),
        summary="Clear a voice's default effect",
    )
    def clear_default(profile_id: ProfileId, request: Request) -> dict[str, Any]:
        profile = take_effects.set_voice_default(studio, check_id(profile_id, "Profile"), "none",
                                                 owner=request_owner(request))
        return profile_out(profile)
