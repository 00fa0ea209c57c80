"""How effects look in REST bodies: a preset name, or an object of settings.

The object's fields are made from :data:`voicebox.effects.SETTINGS`, so the OpenAPI schema names
every setting with its range and cannot drift from what the chain accepts. Pydantic checks only
the types here; the ranges (and the low cut below the high cut) are checked by
:class:`~voicebox.effects.EffectChain`, whose messages say what to send instead, after a route
has found the take or profile (so another owner's id is answered as a missing one first).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

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

EFFECTS_HELP = (
    "voicebox extension: effects on the finished take, non-destructive (the clean take is kept). A preset "
    f"name ({', '.join(f'`{k}`' for k in PRESET_LABELS)}), `none` for the clean voice, or an object of "
    "settings (see `GET /effects`). Omitted: the voice's default effect, if it has one."
)


class EffectBody(BaseModel):
    """The effect to apply or preview."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"effects": "radio"}, {"effects": {"preset": "cathedral", "gain_db": -3}}, {"effects": "none"}]})
    effects: str | EffectSettings = Field(  # type: ignore[valid-type]
        description="A preset name, `none` (no effect), or an object of settings.")


def plain(value: Any) -> Any:
    """A body's ``effects`` as :func:`voicebox.effects.parse` reads it (a settings model as a dict)."""
    return value.model_dump(exclude_none=True) if isinstance(value, BaseModel) else value


def chain_from(value: Any) -> EffectChain | None:
    """A body's ``effects`` (a name, a settings model or nothing) as a chain, or ``None``."""
    return parse(plain(value))
