"""[privacy]: how long the bot keeps what users wrote, and the operator's policy links."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator


class PrivacySettings(BaseModel):
    """[privacy]: retention of prompts and files, and the links `help` shows."""

    # As every section (`sections.Section`, which imports this module): unknown keys are errors.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    retention_days: int = Field(
        0, ge=0, le=36500,
        description="Purge prompts, URLs and saved files of jobs older than this; 0 = keep forever.",
    )
    privacy_url: str | None = Field(None, description="Your privacy policy; shown in help.")
    terms_url: str | None = Field(None, description="Your terms of service; shown in help.")
    delete_at_fal: bool = Field(
        True, description="Delete and forget-me also ask fal to delete the request and its files.",
    )
    fal_platform_url: str | None = Field(
        None, description="fal's Platform API; default https://api.fal.ai/v1 (the backend's own URL for a simulator).",
    )

    @field_validator("privacy_url", "terms_url", "fal_platform_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).netloc:
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value
