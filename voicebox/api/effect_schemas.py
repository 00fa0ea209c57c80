"""How effects look in REST bodies: a preset name, or an object of settings.

The object's fields are made from :data:`voicebox.effects.SETTINGS`, so the OpenAPI schema names
every setting with its range and cannot drift from what the chain accepts. That model is the
*schema* of :data:`EffectsValue`; the value itself is checked by
:class:`~voicebox.effects.EffectChain`, not by pydantic: a union of a string and a model makes
pydantic report both branches ("effects.str: Input should be a valid string; effects.EffectSettings
.speed: ..."), while the chain says "Speed (speed) must be a number, not 'fast'." and what the
settings are. It runs after a route has found the take or profile, so another owner's id is
answered as a missing one whatever the body says.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, create_model

from ..effects import CUSTOM, NONE, PRESET_LABELS, SETTINGS, EffectChain, parse


def _setting_field(name: str) -> tuple[Any, Any]:
    s = SETTINGS[name]
    off = "0 (off) or " if s.off_at_zero else ""
    unit = f" {s.unit}" if s.unit else ""
    help_text = f"; {s.help}" if s.help else ""
    return float | None, Field(None, description=f"{s.label}: {off}{s.low:g} to {s.high:g}{unit} "
                                                 f"(neutral {s.neutral:g}){help_text}.")


#: A custom chain; ``preset`` gives the starting values that the other fields change.
EffectSettings: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "EffectSettings",
    __config__=ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"preset": "telephone"}, {"pitch_semitones": 3, "reverb_mix": 0.3, "reverb_size": 0.8}]}),
    __doc__="Effect settings: start from `preset` (optional), change any setting; unset settings keep "
            "the preset's (or neutral) values.",
    preset=(str | None, Field(None, description=f"Starting point: {', '.join(PRESET_LABELS)}, `{CUSTOM}` "
                                                f"(neutral) or `{NONE}`.")),
    **{name: _setting_field(name) for name in SETTINGS},
)

#: What a body's ``effects`` may be: a preset name or an object (checked by the chain, see above).
EffectsValue = Annotated[
    str | dict[str, Any],
    WithJsonSchema({"anyOf": [{"type": "string", "title": "Preset", "examples": ["telephone", "none"]},
                              EffectSettings.model_json_schema()]}),
]

EFFECTS_HELP = (
    "voicebox extension: effects on the finished take, non-destructive (the clean take is kept). A preset "
    f"name ({', '.join(f'`{k}`' for k in PRESET_LABELS)}), `none` for the clean voice, or an object of "
    "settings (see `GET /effects`). Omitted: the voice's default effect, if it has one."
)


class EffectBody(BaseModel):
    """The effect to apply or preview."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"effects": "radio"}, {"effects": {"preset": "cathedral", "gain_db": -3}}, {"effects": "none"}]})
    effects: EffectsValue = Field(description="A preset name, `none` (no effect), or an object of settings.")


def plain(value: Any) -> Any:
    """A body's ``effects`` as :func:`voicebox.effects.parse` reads it (a settings model as a dict)."""
    return value.model_dump(exclude_none=True) if isinstance(value, BaseModel) else value


def chain_from(value: Any) -> EffectChain | None:
    """A body's ``effects`` (a name, a settings model or nothing) as a chain, or ``None``."""
    return parse(plain(value))
