"""REST routes for projects: create or import, blocks, background render, export.

``GET /projects/{id}`` carries the render's progress (state, blocks done of total, the block being
made, seconds left), so a client polls one URL. Import is ``POST /projects/import`` (multipart:
a file and its ``format``), beside the JSON ``POST /projects``, because one route cannot take both
bodies and still validate each. Every route is its caller's
(:func:`~voicebox.api.guards.request_owner`): another person's project, block or export is 404.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Path, Request, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from ..projects.records import Project
from .guards import request_owner
from .routes import check_id, read_upload
from .schemas import error_responses

if TYPE_CHECKING:
    from ..services import Studio

ProjectId = Annotated[str, Path(description="Project id (32 lowercase hex digits).")]
BlockId = Annotated[str, Path(description="Block id (32 lowercase hex digits).")]


class BlockIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(description="What the block says (up to 5,000 characters).")
    voice: str = Field("", description="A profile id or name; empty: the project's voice.")
    language: str = Field("", description="Empty: the project's language.")
    preset: str = ""
    seed: int | None = None
    pause: float | None = Field(None, description="Seconds of silence after the block (default 0.6).")
    chapter: str = Field("", description="A chapter that starts at this block.")


class BlockChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str | None = None
    voice: str | None = None
    language: str | None = None
    preset: str | None = None
    seed: int | None = None
    pause: float | None = None
    chapter: str | None = None
    position: int | None = Field(None, ge=0, description="Move the block to this place.")


class SplitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    at: int = Field(description="Where the second block starts: a character index into `text`.")
    text: str | None = Field(None, description="The block's text to split (edited); default: its stored text.")


class ProjectIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"title": "Chapter one", "voice": "Narrator", "blocks": [{"text": "Hello."}]}]},
    )
    title: str
    voice: str = ""
    language: str = "auto"
    blocks: list[BlockIn] = []


class ProjectChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str | None = None
    voice: str | None = None
    language: str | None = None


class ExportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Literal["wav", "flac", "mp3", "m4b", "zip"] = "m4b"
    subtitles: Literal["srt", "vtt", "none"] = "none"
    level: Literal["block", "sentence", "word"] = Field(
        "block", description="Subtitle cues: `block` (one per block), `sentence` (one per sentence, from the "
        "render's own timings) or `word` (timed word by word by a Whisper pass over the rendered audio: "
        "slower; WebVTT marks each word's time for word-by-word highlighting).")
    use: Literal["audiobook", "podcast"] = "audiobook"


class ProjectOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    title: str
    blocks: list[dict[str, Any]]
    render: dict[str, Any] = Field(description="`state` (idle, running, paused, cancelled, done, failed), "
                                   "`done`, `total`, `current`, `seconds_left`, `message`.")


def project_out(project: Project) -> dict[str, Any]:
    """A project as the API shows it (its owner is the caller: not repeated)."""
    return {k: v for k, v in project.to_dict().items() if k != "owner"}


def add_project_routes(router: APIRouter, studio: "Studio") -> None:
    projects, renders = studio.projects, studio.renders
    tags = ["projects"]

    def pid(value: str) -> str:
        return check_id(value, "Project")

    @router.post("/projects", status_code=201, response_model=ProjectOut, tags=tags,
                 responses=error_responses(404, 422), summary="Create a project")
    def create(body: ProjectIn, request: Request) -> dict[str, Any]:
        blocks = [b.model_dump() for b in body.blocks]
        return project_out(projects.create(body.title, body.voice, body.language, blocks,
                                           owner=request_owner(request)))

    @router.post("/projects/import", status_code=201, response_model=ProjectOut, tags=tags,
                 responses=error_responses(413, 422), summary="Import a project from a file")
    def import_file(
        request: Request,
        file: Annotated[UploadFile, File(description="Text, Markdown, SRT, WebVTT, CSV, a dialogue script, "
                                                     "or the project.json of an exported ZIP.")],
        format: Annotated[Literal["text", "markdown", "srt", "vtt", "csv", "dialogue", "project"], Form()],
        title: Annotated[str, Form()] = "",
        voice: Annotated[str, Form(description="The default voice (profile id or name).")] = "",
        language: Annotated[str, Form()] = "auto",
    ) -> dict[str, Any]:
        return project_out(projects.import_file(read_upload(file), format, title, voice, language,
                                                owner=request_owner(request)))

    @router.get("/projects", tags=tags, summary="Projects, most recently changed first")
    def list_projects(request: Request) -> dict[str, Any]:
        items = projects.store.all(request_owner(request))
        return {"items": [{"id": p.id, "title": p.title, "blocks": len(p.blocks), "render": p.render.to_dict(),
                           "updated_at": p.updated_at} for p in items], "total": len(items)}

    @router.get("/projects/{project_id}", response_model=ProjectOut, tags=tags, responses=error_responses(404),
                summary="One project with its blocks and render progress")
    def get(project_id: ProjectId, request: Request) -> dict[str, Any]:
        return project_out(projects.store.get(pid(project_id), request_owner(request)))

    @router.put("/projects/{project_id}", response_model=ProjectOut, tags=tags,
                responses=error_responses(404, 422), summary="Change title, voice or language")
    def update(project_id: ProjectId, body: ProjectChange, request: Request) -> dict[str, Any]:
        return project_out(projects.update(pid(project_id), owner=request_owner(request),
                                           **body.model_dump(exclude_none=True)))

    @router.delete("/projects/{project_id}", status_code=204, tags=tags, responses=error_responses(404),
                   summary="Delete a project and its takes")
    def delete(project_id: ProjectId, request: Request) -> None:
        projects.delete(pid(project_id), owner=request_owner(request))

    @router.post("/projects/{project_id}/blocks", status_code=201, response_model=ProjectOut, tags=tags,
                 responses=error_responses(404, 422), summary="Add a block (at the end, or at `position`)")
    def add_block(project_id: ProjectId, body: BlockIn, request: Request,
                  position: int | None = None) -> dict[str, Any]:
        return project_out(projects.add_block(pid(project_id), position, owner=request_owner(request),
                                              **body.model_dump()))

    @router.put("/projects/{project_id}/blocks/{block_id}", response_model=ProjectOut, tags=tags,
                responses=error_responses(404, 422), summary="Change or move a block")
    def update_block(project_id: ProjectId, block_id: BlockId, body: BlockChange,
                     request: Request) -> dict[str, Any]:
        changes = body.model_dump(exclude_unset=True)
        position = changes.pop("position", None)
        owner = request_owner(request)
        project = projects.update_block(pid(project_id), check_id(block_id, "Block"), owner=owner, **changes)
        if position is not None:
            project = projects.move_block(project.id, block_id, position, owner=owner)
        return project_out(project)

    @router.delete("/projects/{project_id}/blocks/{block_id}", response_model=ProjectOut, tags=tags,
                   responses=error_responses(404), summary="Delete a block and its take")
    def delete_block(project_id: ProjectId, block_id: BlockId, request: Request) -> dict[str, Any]:
        return project_out(projects.delete_block(pid(project_id), check_id(block_id, "Block"),
                                                 owner=request_owner(request)))

    @router.post("/projects/{project_id}/blocks/{block_id}/split", response_model=ProjectOut, tags=tags,
                 responses=error_responses(404, 422), summary="Split a block in two at a character index")
    def split_block(project_id: ProjectId, block_id: BlockId, body: SplitIn,
                    request: Request) -> dict[str, Any]:
        block = check_id(block_id, "Block")
        return project_out(projects.split_block(pid(project_id), block, body.at, body.text,
                                                owner=request_owner(request)))

    @router.post("/projects/{project_id}/blocks/{block_id}/merge", response_model=ProjectOut, tags=tags,
                 responses=error_responses(404, 422), summary="Merge a block with the block after it")
    def merge_block(project_id: ProjectId, block_id: BlockId, request: Request) -> dict[str, Any]:
        return project_out(projects.merge_with_next(pid(project_id), check_id(block_id, "Block"),
                                                    owner=request_owner(request)))

    @router.post("/projects/{project_id}/render", response_model=ProjectOut, tags=tags,
                 responses=error_responses(404, 422), summary="Render (or resume) in the background")
    def render(project_id: ProjectId, request: Request) -> dict[str, Any]:
        return project_out(renders.start(pid(project_id), owner=request_owner(request)))

    @router.post("/projects/{project_id}/pause", response_model=ProjectOut, tags=tags,
                 responses=error_responses(404, 422), summary="Pause the render after the current block")
    def pause(project_id: ProjectId, request: Request) -> dict[str, Any]:
        return project_out(renders.pause(pid(project_id), owner=request_owner(request)))

    @router.post("/projects/{project_id}/cancel", response_model=ProjectOut, tags=tags,
                 responses=error_responses(404, 422), summary="Stop the render")
    def cancel(project_id: ProjectId, request: Request) -> dict[str, Any]:
        return project_out(renders.cancel(pid(project_id), owner=request_owner(request)))

    @router.post("/projects/{project_id}/export", status_code=202, tags=tags, responses=error_responses(404, 422),
                 summary="Export a rendered project in the background")
    def export(project_id: ProjectId, body: ExportIn, request: Request) -> dict[str, Any]:
        """Answers at once with the export job; `GET .../export/{job}` shows its step, and
        `GET .../export/{job}/file` (then `/file?index=1` for the subtitles) downloads the result."""
        job = studio.exports.start(pid(project_id), body.format, body.subtitles, body.level, body.use,
                                   owner=request_owner(request))
        return {**job.to_dict(), "url": f"/projects/{project_id}/export/{job.id}"}

    @router.get("/projects/{project_id}/export/{job_id}", tags=tags, responses=error_responses(404),
                summary="An export's state: running (with its step), done (with its files) or failed")
    def export_state(project_id: ProjectId, job_id: Annotated[str, Path()],
                     request: Request) -> dict[str, Any]:
        job = studio.exports.get(pid(project_id), check_id(job_id, "Export"), owner=request_owner(request))
        return job.to_dict()

    @router.get("/projects/{project_id}/export/{job_id}/file", response_class=FileResponse, tags=tags,
                responses=error_responses(404, 422), summary="Download an export's file")
    def export_file(project_id: ProjectId, job_id: Annotated[str, Path()], request: Request,
                    index: int = 0) -> FileResponse:
        job = check_id(job_id, "Export")
        path = studio.exports.file(pid(project_id), job, index, owner=request_owner(request))
        media = {".wav": "audio/wav", ".flac": "audio/flac", ".mp3": "audio/mpeg", ".m4b": "audio/mp4",
                 ".zip": "application/zip", ".srt": "application/x-subrip", ".vtt": "text/vtt"}
        return FileResponse(path, media_type=media.get(path.suffix, "application/octet-stream"), filename=path.name)
