"""REST routes for "My data" (issue #16): who am I, download everything, import it, delete it.

``GET /me`` (name and counts), ``GET /me/data`` (a ZIP of all the caller's profiles, samples,
takes and projects with a ``manifest.json``), ``POST /me/data/import`` (that ZIP back, here or on
another voicebox), ``DELETE /me/data?confirm=delete-everything``. The work is
:mod:`voicebox.my_data` and :mod:`voicebox.my_data_import`; every route is the caller's own
(:func:`~voicebox.api.guards.request_owner`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Body, File, Query, Request, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from ..atomic import remove_quietly
from ..errors import InvalidInput
from ..my_data import counts, delete_everything, export_library
from ..my_data_import import import_library
from .guards import request_owner
from .routes import caller
from .schemas import error_responses

if TYPE_CHECKING:
    from ..services import Studio

CONFIRM = "delete-everything"
HOW_TO_CONFIRM = (f"Deleting everything cannot be undone. To confirm, send DELETE /me/data?confirm={CONFIRM} "
                  f"(or the JSON body {{\"confirm\": \"{CONFIRM}\"}}); download your data first (GET /me/data).")


class Counts(BaseModel):
    profiles: int
    samples: int
    history: int
    projects: int
    batches: int


class MeOut(BaseModel):
    name: str = Field(description="The account's name; empty for the one local user.")
    counts: Counts


class ImportOut(BaseModel):
    added: dict[str, int] = Field(description="How many profiles, samples, history takes, projects and "
                                              "project takes were added.")
    renamed: list[str] = Field(description="Profiles whose name was taken, and their new names.")
    skipped: list[str] = Field(description="What was left out, and why.")


class DeletedOut(BaseModel):
    deleted: dict[str, int] = Field(description="How many profiles, samples, takes, projects, batches and "
                                                "files were removed.")


class ConfirmIn(BaseModel):
    confirm: str = Field(description=f"Must be {CONFIRM!r}.")


def add_my_data_routes(router: APIRouter, studio: Studio) -> None:
    tags = ["my data"]

    @router.get("/me", response_model=MeOut, tags=tags, summary="Who I am and how much I keep")
    def me(request: Request) -> dict[str, Any]:
        owner = request_owner(request)
        return {"name": owner, "counts": counts(studio, owner)}

    @router.get("/me/data", response_class=FileResponse, tags=tags, summary="Download my data (ZIP)",
                responses={200: {"content": {"application/zip": {}}, "description": "The ZIP."}})
    def download(request: Request) -> FileResponse:
        """Every profile (samples and transcripts), History take (audio and metadata) and project
        (`project.json` and block audio) of the caller, as files a person can open, with a
        `manifest.json` listing every record. `POST /me/data/import` reads it back."""
        path = export_library(studio, request_owner(request))
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        # sent, then removed: a copy of the whole library must not linger in the data folder
        return FileResponse(path, media_type="application/zip", filename=f"voicebox-my-data-{stamp}.zip",
                            background=BackgroundTask(remove_quietly, path))

    @router.post("/me/data/import", response_model=ImportOut, tags=tags, summary="Import a My data ZIP",
                 responses=error_responses(409, 413, 422, 429))
    def import_zip(request: Request,
                   file: Annotated[UploadFile, File(description="A ZIP from GET /me/data (this or another voicebox).")]
                   ) -> dict[str, Any]:
        """Adds the ZIP's profiles (a taken name gets " (2)"), samples, History takes and projects
        to the caller's library with new ids; all or nothing. Refused: not such a ZIP, unsafe
        file names, over the upload limit or a zip bomb."""
        fd, tmp = tempfile.mkstemp(prefix="voicebox-import-", suffix=".zip")
        try:
            with os.fdopen(fd, "wb") as handle:
                shutil.copyfileobj(file.file, handle, 1 << 20)
            return import_library(studio, request_owner(request), Path(tmp), user=caller(studio, request)).to_dict()
        finally:
            Path(tmp).unlink(missing_ok=True)

    @router.delete("/me/data", response_model=DeletedOut, tags=tags, summary="Delete everything of mine",
                   responses=error_responses(409, 422))
    def delete(request: Request,
               confirm: Annotated[str | None, Query(description=f"Must be {CONFIRM!r}.")] = None,
               body: Annotated[ConfirmIn | None, Body()] = None) -> dict[str, Any]:
        """Removes all of the caller's profiles, samples, takes, projects, batches and exports,
        records and files. Cannot be undone; refused while a render, batch or export runs."""
        if CONFIRM not in (confirm, body.confirm if body else None):
            raise InvalidInput(HOW_TO_CONFIRM)
        return {"deleted": delete_everything(studio, request_owner(request)).to_dict()}
