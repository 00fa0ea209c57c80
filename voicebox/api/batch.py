"""REST routes for a batch without a project: ``POST /batch`` (202, a background job), ``GET``
its progress, download its ZIP, ``DELETE`` to cancel. The work is :class:`voicebox.batch.Batches`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from ..batch import MAX_ITEMS, BatchState
from .guards import request_owner
from .routes import caller, check_id
from .schemas import error_responses

if TYPE_CHECKING:
    from ..services import Studio

BatchId = Annotated[str, Path(description="Batch id (32 lowercase hex digits).")]


class BatchItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(description="What to say (up to 5,000 characters).")
    voice: str = Field(description="A profile id or name.")
    language: str | None = Field(None, description="Empty: the profile's language.")
    preset: str | None = None
    seed: int | None = None


class BatchIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"items": [{"text": "Hello.", "voice": "Narrator"},
                                                   {"text": "Hi there.", "voice": "Guest", "seed": 7}]}]},
    )
    items: list[BatchItemIn] = Field(min_length=1, max_length=MAX_ITEMS)
    quality: Literal["off", "check", "retake", "auto"] | None = Field(
        None, description="The quality gate for every item; empty: the server's.")


class BatchOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    state: str = Field(description="running, done, failed or cancelled.")
    done: int
    total: int
    message: str = ""
    items: list[dict[str, Any]] = Field(description="Each item's `index`, `file`, `text`, `voice`, `status` "
                                        "(waiting, running, done, failed, cancelled), `message`, "
                                        "`generation_id`, `used_seed`.")


def batch_out(state: BatchState) -> dict[str, Any]:
    out = {k: v for k, v in state.to_dict().items() if k != "owner"}
    out["download_url"] = f"/batch/{state.id}/download" if state.zip_ready else None
    return out


def add_batch_routes(router: APIRouter, studio: Studio) -> None:
    batches = studio.batches
    tags = ["batch"]

    def bid(value: str) -> str:
        return check_id(value, "Batch")

    @router.post("/batch", status_code=202, response_model=BatchOut, tags=tags,
                 responses=error_responses(422, 429), summary="Make many lines in the background")
    def start(body: BatchIn, request: Request) -> dict[str, Any]:
        """Every item is checked first (an unknown voice is refused with the item's number);
        then the items are made one after another. Poll `GET /batch/{id}`. Each item counts as
        a take against the caller's quotas when the batch is accepted (with its estimated
        seconds), so a batch over them is refused whole."""
        items = [item.model_dump() for item in body.items]
        reservation = studio.quotas.reserve_take(caller(studio, request), *(item["text"] for item in items))
        try:
            return batch_out(batches.start(items, body.quality, owner=request_owner(request)))
        except BaseException:
            reservation.release()
            raise

    @router.get("/batch/{batch_id}", response_model=BatchOut, tags=tags, responses=error_responses(404),
                summary="A batch's progress")
    def get(batch_id: BatchId, request: Request) -> dict[str, Any]:
        return batch_out(batches.get(bid(batch_id), owner=request_owner(request)))

    @router.get("/batch/{batch_id}/download", response_class=FileResponse, tags=tags,
                responses=error_responses(404, 409), summary="The finished batch as a ZIP")
    def download(batch_id: BatchId, request: Request) -> FileResponse:
        """One WAV per item made (`001-<slug>.wav`) and `batch.json` (items, generation ids, seeds)."""
        path = batches.zip_path(bid(batch_id), owner=request_owner(request))
        return FileResponse(path, media_type="application/zip", filename=f"batch-{batch_id[:8]}.zip")

    @router.delete("/batch/{batch_id}", response_model=BatchOut, tags=tags, responses=error_responses(404),
                   summary="Cancel a running batch")
    def cancel(batch_id: BatchId, request: Request) -> dict[str, Any]:
        return batch_out(batches.cancel(bid(batch_id), owner=request_owner(request)))
