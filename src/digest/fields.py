"""Subscriber fields (config.yaml ``audience:``): typed attributes an import fills from
the columns it names, that segments select on, and saved segments by name.

    audience:
      fields:
        region: {type: choice, choices: [Asia, Europe, Americas], columns: [Region]}
        joined_on: {type: date, columns: [OPTIN_TIME, created_at]}
      unknown_columns: keep        # or refuse: a column no field names stops the import
      sample: {region: Asia}       # the preview's sample reader's fields
      segments:
        asia: "region = 'Asia'"

An imported value is checked against its field's type: a row with a bad value is
rejected with the field and the reason, the rest of the file goes in. Values are kept
typed (numbers as numbers, true/false, dates as YYYY-MM-DD), so that segments compare
them as what they are.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from digest.segments import BUILT_IN

FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
TRUE = {"true", "yes", "y", "1", "t", "on"}
FALSE = {"false", "no", "n", "0", "f", "off", ""}


class FieldSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["text", "number", "date", "boolean", "choice"] = "text"
    choices: tuple[str, ...] = ()  # for type: choice
    columns: tuple[str, ...] = ()  # import headers that fill it, besides its own name

    @model_validator(mode="after")
    def _choices(self) -> FieldSpec:
        if (self.type == "choice") != bool(self.choices):
            raise ValueError("choices go with type: choice, and type: choice needs choices")
        return self

    def convert(self, raw: str) -> object:
        """The value of an imported cell, typed; ValueError says why it cannot be."""
        text = raw.strip()
        if self.type == "number":
            try:
                number = float(text.replace(",", "")) if text else None
            except ValueError:
                raise ValueError(f"{text!r} is not a number") from None
            return int(number) if number is not None and number.is_integer() else number
        if self.type == "date":
            try:  # a date, or the date of a time ("2024-03-02 10:11:12", ISO 8601)
                return dt.date.fromisoformat(text[:10]).isoformat() if text else None
            except ValueError:
                raise ValueError(f"{text!r} is not a date (YYYY-MM-DD)") from None
        if self.type == "boolean":
            lowered = text.lower()
            if lowered not in TRUE | FALSE:
                raise ValueError(f"{text!r} is not true or false")
            return lowered in TRUE
        if self.type == "choice" and text and text not in self.choices:
            raise ValueError(f"{text!r} is not one of {', '.join(self.choices)}")
        return text or None


class Audience(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    fields: dict[str, FieldSpec] = {}
    unknown_columns: Literal["keep", "refuse"] = "keep"  # keep: stored as text attributes
    segments: dict[str, str] = {}  # saved segments, by name
    # the preview's sample reader's fields (what editors see filled in), typed as imported
    sample: dict[str, str] = {}

    @field_validator("fields")
    @classmethod
    def _names(cls, value: dict[str, FieldSpec]) -> dict[str, FieldSpec]:
        for name in value:
            if not FIELD_NAME.match(name):
                raise ValueError(
                    f"{name!r} cannot name a field: lower-case letters, digits and _, "
                    "starting with a letter"
                )
            if name in BUILT_IN:
                raise ValueError(f"{name!r} is built in (every subscriber has it)")
        return value

    @model_validator(mode="after")
    def _segments_parse(self) -> Audience:
        from digest.segments import SegmentError, parse_segment

        for name, text in self.segments.items():
            try:
                parse_segment(text, self.segment_fields())
            except SegmentError as err:
                raise ValueError(f"segments.{name}: {err}") from None
        return self

    @model_validator(mode="after")
    def _sample_fields(self) -> Audience:
        self.sample_values()
        return self

    def sample_values(self) -> dict[str, object]:
        """The sample reader's fields, typed as an import would store them; a field
        not declared, or a value its field cannot take, is refused by name."""
        typed = {}
        for name, raw in self.sample.items():
            spec = self.fields.get(name)
            if spec is None:
                raise ValueError(f"sample.{name}: not a field of audience.fields")
            try:
                typed[name] = spec.convert(str(raw))
            except ValueError as err:
                raise ValueError(f"sample.{name}: {err}") from None
        return typed

    def segment_fields(self) -> dict[str, tuple[str, tuple[str, ...]]]:
        """Each field's type and choices, as the segment parser wants them."""
        return {name: (spec.type, spec.choices) for name, spec in self.fields.items()}

    def column_map(self) -> dict[str, tuple[str, FieldSpec]]:
        """Lower-cased import header -> (field name, field)."""
        found: dict[str, tuple[str, FieldSpec]] = {}
        for name, spec in self.fields.items():
            for header in (name, *spec.columns):
                found.setdefault(header.strip().lower(), (name, spec))
        return found
