"""config.yaml's ``api:`` section: how much each token may ask of the HTTP API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Api(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # calls a token may make in a burst, then per second (each `digest serve` worker
    # counts its own); beyond that, 429 with Retry-After
    burst: int = Field(200, ge=1, le=1_000_000)
    per_second: float = Field(50, gt=0, le=1_000_000)
    max_body_bytes: int = Field(65_536, ge=1_024, le=10_000_000)
    page_size: int = Field(100, ge=1, le=1000)  # items a page, unless ?limit= asks fewer
