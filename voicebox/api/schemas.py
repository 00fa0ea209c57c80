"""Request and response models of the REST API.

They exist for two reasons: FastAPI validates every request body against them (so a wrong field
is a readable 422 before any route code runs), and they are the OpenAPI schema that ``/docs``
shows, with examples. Response models derive from :class:`Record`, which also passes through the
fields the store keeps beyond the documented ones. Kept apart from the routes, so that those read
as HTTP-to-``Studio`` translation and nothing else.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .. import __version__
from ..records import GenerationRequest
from .effect_schemas import EFFECTS_HELP, EffectsValue, chain_from

EXAMPLE_ID = "3f9c2a7be41d4c0f9a8e6b5d4c3b2a19"

AudioFormat = Literal["wav", "flac", "mp3", "ogg"]
SpeechFormat = Literal["wav", "flac", "mp3", "opus", "pcm"]
ModelSize = Literal["0.6B", "1.7B"]
ModelName = Literal["tts", "whisper"]


class Record(BaseModel):
    """A stored record: the documented fields, plus any others the store keeps."""

    model_config = ConfigDict(extra="allow")


class ErrorBody(BaseModel):
    """Every error response."""

    detail: str = Field(examples=["Profile '3f9c2a7be41d4c0f9a8e6b5d4c3b2a19' does not exist."])
    errors: list[dict[str, Any]] | None = Field(
        None, description="For validation errors only: each failing field's location and message."
    )


class OpenAIError(BaseModel):
    message: str = Field(examples=["No voice profile named or with id 'Nobody'."])
    type: str = Field(description="`invalid_request_error` (4xx) or `server_error` (5xx).")
    param: str | None = Field(None, description="The failing field of a validation error.")
    code: str | None = Field(None, examples=["not_found"])


class OpenAIErrorBody(BaseModel):
    """Every error response under `/v1/` (OpenAI's shape)."""

    error: OpenAIError


class SpeechServer(Record):
    """One vLLM-Omni server of the remote backend (``VOICEBOX_BACKEND=remote``) as voicebox sees
    it: its URL (the operator's own setting; never the API key) and state."""

    url: str = Field(examples=["http://gpu1:8091"])
    state: Literal["unknown", "up", "down"] = Field(
        description="`unknown`: not asked yet; `up`: answering; `down`: taken out after a failure "
        "until `retry_in` has passed.", examples=["up"])
    outstanding: int = Field(0, description="Requests voicebox has in flight on it now.", examples=[3])
    requests: int | None = Field(None, description="Requests sent to it since voicebox started.")
    model: str | None = Field(None, description="The model it serves (from its `/v1/models`).",
                              examples=["Qwen/Qwen3-TTS-12Hz-0.6B-Base"])
    last_error: str | None = Field(None, description="Why it was last taken out, in words (no paths, no key).",
                                   examples=["HTTP 500: engine failure"])
    last_check: float | None = Field(None, description="Unix time of its last health check.")
    retry_in: float | None = Field(None, description="Seconds until a down server is tried again.",
                                   examples=[4.0])
    voice_registry: bool | None = Field(None, description="Whether it keeps registered voices "
                                        "(`null`: not asked yet).")


class Health(Record):
    status: str = Field(examples=["ok"])
    version: str = Field(examples=[__version__])
    auth_required: bool = False
    tts_loaded: bool | None = None
    tts_model: str | None = Field(None, examples=["Qwen/Qwen3-TTS-12Hz-0.6B-Base"])
    tts_size: str | None = Field(None, examples=["0.6B"])
    device: str | None = Field(None, examples=["cuda"])
    whisper_loaded: bool | None = None
    database_recovered: str | None = None
    servers: list[SpeechServer] | None = Field(
        None, description="Only with `VOICEBOX_BACKEND=remote`: every vLLM-Omni server and its state.")


class ProfileCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"name": "Narrator", "description": "Warm, slow", "language": "English"}]
        },
    )
    name: str = Field(description="1-100 characters, unique (case-insensitive).", examples=["Narrator"])
    description: str = Field("", examples=["Warm, slow audiobook voice"])
    language: str = Field("auto", description="`auto` or a language the model speaks.", examples=["English"])
    consent: bool = Field(
        False,
        description="You have the speaker's permission to clone this voice. Required (true) on a server "
        "several people use; recorded with the time as `consented_at`.",
    )


class ProfileUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"description": "Calm and clear"}]}
    )
    name: str | None = None
    description: str | None = None
    language: str | None = None


class Profile(Record):
    id: str = Field(examples=[EXAMPLE_ID])
    name: str = Field(examples=["Narrator"])
    description: str = ""
    language: str = Field("auto", examples=["English"])
    created_at: str | None = None
    updated_at: str | None = None
    sample_count: int | None = None
    consented_at: str = Field("", description="When its maker confirmed the speaker's permission; empty where "
                              "nobody was asked (a one-person studio).")
    effects: dict[str, Any] | None = Field(None, description="The effect new takes of this voice get unless "
                                           "their request names one (`PUT /profiles/{id}/effects`).")


class Sample(Record):
    id: str = Field(examples=[EXAMPLE_ID])
    profile_id: str
    reference_text: str = Field(description="What the sample says (typed or transcribed).")
    duration: float = Field(description="Seconds of speech kept after trimming silence.")
    sample_rate: int = 24000
    sha256: str
    warnings: list[str] = []
    created_at: str | None = None
    audio_url: str = Field(examples=[f"/profiles/samples/{EXAMPLE_ID}/audio"])


class ProfileDetail(Profile):
    samples: list[Sample] = []


class ProfileList(BaseModel):
    items: list[Profile]
    total: int = Field(description="Matches before `limit`/`offset` were applied.")


class SampleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reference_text: str = Field(
        examples=["And so, my fellow Americans, ask not what your country can do for you."]
    )


class GenerateRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "profile_id": EXAMPLE_ID,
                    "text": "Hello! This is my cloned voice.",
                    "seed": 42,
                    "preset": "Stable",
                }
            ]
        },
    )
    profile_id: str = Field(examples=[EXAMPLE_ID], description="A profile's id, or a built-in voice "
                            "`speaker:<name>` (see `GET /speakers`).")
    text: str = Field(
        description="1-5,000 characters; long text is split at sentences.", examples=["Hello there!"]
    )
    instruct: str | None = Field(None, description="A style instruction for a built-in voice (\"whispering\", "
                                 "\"excited, faster\"); cloned voices do not take one and refuse it.")
    language: str | None = Field(None, description="Default: the profile's language (`auto` detects it).")
    model_size: ModelSize | None = Field(None, description="Default: the loaded size, else 0.6B.")
    seed: int | None = Field(None, description="0 to 2^31-1; random (and recorded) when omitted.")
    temperature: float | None = Field(None, description="0.05-2.0")
    top_k: int | None = Field(None, description="1-500")
    top_p: float | None = Field(None, description="0.05-1.0")
    repetition_penalty: float | None = Field(None, description="1.0-2.0")
    preset: str | None = Field(None, description="`Stable`, `Balanced` (default) or `Expressive`.")
    quality: Literal["off", "check", "retake"] | None = Field(
        None,
        description="Check each sentence (`check`), also make a failing one again (`retake`), or neither "
        "(`off`). Default: the server's `VOICEBOX_QUALITY` (`retake` on a GPU, `check` on a CPU).",
    )
    max_takes: int | None = Field(None, ge=1, le=10, description="Most takes of one sentence under `retake` (default 3).")
    effects: EffectsValue | None = Field(None, description=EFFECTS_HELP)

    def request(self) -> GenerationRequest:
        """The one request type every way into generation shares."""
        return GenerationRequest(**{**self.model_dump(exclude_none=True), "effects": chain_from(self.effects)})


class Timings(Record):
    prompt: float = Field(description="Seconds to get the voice prompt (0 when cached).")
    generate: float = Field(description="Seconds in the talker and code predictor.")
    decode: float = Field(description="Seconds in the codec decoder.")
    total: float


class CheckOut(BaseModel):
    name: str = Field(examples=["cer"])
    value: float | None = Field(None, description="The measured number (null: could not be measured).")
    threshold: float
    passed: bool
    detail: str = ""


class ScoreOut(BaseModel):
    """What the quality gate measured on one clip."""

    model_config = ConfigDict(extra="allow")
    checks: list[CheckOut] = []
    passed: bool
    score: float = Field(description="Combined score from 0 to 1; the best take is the highest that passed.")
    heard: str = Field("", description="What Whisper heard.")


class TakeOut(BaseModel):
    seed: int
    text: str
    duration: float
    frames: int = 0
    hit_cap: bool = False
    passed: bool | None = Field(None, description="Passed every check (null: not checked).")
    score: float | None = Field(None, description="Combined score from 0 to 1 (the best take is used).")
    scores: dict[str, float | None] = Field(
        {}, description="Each check's number: `cer`, `similarity`, `pace`, `pace_vs_voice`, `silence`, "
        "`clipping`, `level` (null: not measured).", examples=[{"cer": 0.04, "similarity": 0.91}],
    )
    checks: list[CheckOut] = Field([], description="Each check with its threshold and verdict.")
    heard: str = Field("", description="What Whisper heard.")


class ChunkOut(BaseModel):
    """One sentence chunk of a take: the unit that quality checks and re-takes attach to."""

    index: int = Field(description="0-based position in the take.")
    text: str
    seed: int = Field(description="Remakes this chunk's random draws.")
    offset: float = Field(description="Seconds from the start of the take's audio.")
    duration: float = Field(description="Seconds of audio.")
    status: str = Field(
        description="`ok`, `needs_review` (no take passed the checks) or `incomplete` (the length limit).",
        examples=["ok"],
    )
    frames: int = Field(0, description="Codec frames (12.5 per second).")
    takes: list[TakeOut] = Field([], description="Every take of this sentence, in the order made.")
    used_take: int = Field(0, description="The take in the audio (an index into `takes`).")


class Generation(Record):
    id: str = Field(examples=[EXAMPLE_ID])
    profile_id: str
    profile_name: str = Field(examples=["Narrator"])
    text: str
    language: str = Field(examples=["English"])
    model: str = Field(examples=["Qwen/Qwen3-TTS-12Hz-0.6B-Base"])
    size: str = Field(examples=["0.6B"])
    mode: str = Field(description="`icl` (samples have transcripts) or `xvector`.", examples=["icl"])
    seed: int
    duration: float = Field(description="Seconds of audio.")
    cache_hit: bool = Field(description="The voice prompt came from the cache.")
    timings: Timings
    status: str = Field(
        description="`ok`, `needs_review` (a sentence never passed the quality checks; `message` says which) "
        "or `incomplete` (a sentence hit the length limit).",
        examples=["ok"],
    )
    quality: str = Field("off", description="How the sentences were checked: `off`, `check` or `retake`.")
    message: str = ""
    params: dict[str, Any] = {}
    chunks: list[ChunkOut] = Field([], description="The sentence chunks, in order.")
    backend: str = Field("qwen3-tts", description="The speech backend that spoke.")
    instruct: str = Field("", description="The style instruction a built-in voice was given.")
    effects: dict[str, Any] | None = Field(None, description="The take's effect chain (null: none); `audio_url` "
                                           "serves the processed audio, the clean take is kept.")
    created_at: str | None = None
    audio_url: str = Field(examples=[f"/audio/{EXAMPLE_ID}"])


class GenerationList(BaseModel):
    items: list[Generation]
    total: int


class ProfileStats(Record):
    profile_id: str
    profile_name: str
    count: int
    seconds: float


class HistoryStats(Record):
    count: int
    total_seconds: float
    per_profile: list[ProfileStats]


class TranscriptSegment(Record):
    start: float
    end: float
    text: str


class Transcript(Record):
    text: str = Field(examples=["And so, my fellow Americans, ask not what your country can do for you."])
    language: str = Field(examples=["en"])
    duration: float = Field(examples=[11.0])
    segments: list[TranscriptSegment] = []


class ModelLoad(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"model": "tts", "size": "0.6B"}]}
    )
    model: ModelName
    size: ModelSize | None = Field(None, description="TTS only.")


class ModelUnload(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"model": "whisper"}]})
    model: ModelName


class ModelsStatus(Record):
    tts: dict[str, Any]
    whisper: dict[str, Any]
    prompt_cache: dict[str, Any] = {}


class SpeechRequest(BaseModel):
    """OpenAI's ``audio.speech.create`` body; unknown fields are ignored, but ``instructions`` is not:
    a built-in voice follows it, a cloned voice refuses it (it would otherwise be lost unsaid)."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "model": "tts-1",
                    "input": "Hello from voicebox.",
                    "voice": "Narrator",
                    "response_format": "wav",
                }
            ]
        },
    )
    model: str = Field(
        "tts-1",
        description="`tts-1`/`gpt-4o-mini-tts` (0.6B), `tts-1-hd` (1.7B), or `0.6B`/`1.7B`; any other "
        "name uses the default size (the loaded model's, else 0.6B). `X-Voicebox-Model` names the size used.",
    )
    input: str = Field(description="The text to speak (1-5,000 characters).")
    voice: str = Field(description="A profile name (case-insensitive) or id, or a built-in voice's name "
                       "(`Vivian`, `Ryan`, ... see `GET /speakers`).", examples=["Narrator"])
    instructions: str | None = Field(None, description="How a built-in voice should speak (\"whispering\", "
                                     "\"excited, faster\"); cloned voices refuse it.")
    response_format: SpeechFormat = Field(
        "mp3", description="`pcm` is raw 16-bit little-endian mono at 24 kHz."
    )
    speed: float = Field(
        1.0, ge=0.25, le=4.0, description="Tempo (pitch kept), applied with a phase vocoder."
    )
    stream: bool = Field(
        False, description="voicebox extension: send audio as it is made (`wav` or `pcm`, speed 1)."
    )
    effects: EffectsValue | None = Field(None, description=EFFECTS_HELP + " Not with `stream`.")


def error_responses(*codes: int, body: type[BaseModel] = ErrorBody) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer with."""
    return {code: {"model": body} for code in codes}
