"""The newsletter's look, as config.yaml's ``brand:`` section: an optional logo and the
accent colour, used alike by the email and the public pages.

Colours are plain hex (``#7a2e12``): they go into CSS and HTML attributes, so nothing
else is accepted. The dark-mode accent, which must read on a near-black page, is made
from the light one unless given.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_ACCENT = "#7a2e12"
DEFAULT_ACCENT_DARK = "#f2a57c"  # the default accent's dark-mode partner, chosen by eye
_HEX = "0123456789abcdef"


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _hex_colour(value: str) -> str:
    text = value.strip().lower()
    if len(text) == 4 and text[0] == "#" and all(c in _HEX for c in text[1:]):
        text = "#" + "".join(c * 2 for c in text[1:])
    if len(text) != 7 or text[0] != "#" or not all(c in _HEX for c in text[1:]):
        raise ValueError("must be a colour as #rrggbb or #rgb, e.g. #7a2e12")
    return text


class Logo(_Part):
    """An image at the top of every email and page, above the newsletter's name."""

    url: str
    width: int = Field(gt=0, le=560)  # CSS pixels as shown; the image itself may be 2x
    height: int = Field(gt=0, le=400)
    alt: str = Field(min_length=1, max_length=200)  # what a reader without images sees

    @field_validator("url")
    @classmethod
    def _https(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError("must be an https:// address of an image (mail clients block others)")
        if any(c in value for c in "\"'<> \n\r\t\\"):
            raise ValueError("must be a plain URL (no quotes, spaces or angle brackets)")
        return value.strip()

    @field_validator("alt")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if any(ord(c) < 32 for c in value):
            raise ValueError("must be one line")
        return value.strip()

    @property
    def origin(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"


class Brand(_Part):
    logo: Logo | None = None
    accent_color: str = DEFAULT_ACCENT  # links, buttons
    accent_color_dark: str | None = None  # None: made from accent_color

    @field_validator("accent_color")
    @classmethod
    def _accent(cls, value: str) -> str:
        return _hex_colour(value)

    @field_validator("accent_color_dark")
    @classmethod
    def _accent_dark(cls, value: str | None) -> str | None:
        return None if value is None else _hex_colour(value)

    @property
    def accent_dark(self) -> str:
        if self.accent_color_dark:
            return self.accent_color_dark
        if self.accent_color == DEFAULT_ACCENT:
            return DEFAULT_ACCENT_DARK
        return lighten(self.accent_color, 0.6)


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def lighten(colour: str, amount: float) -> str:
    """``colour`` mixed with white: 0 keeps it, 1 is white."""
    return "#" + "".join(f"{round(c + (255 - c) * amount):02x}" for c in _rgb(colour))


def contrast(first: str, second: str) -> float:
    """The WCAG 2 contrast ratio of two colours (1 to 21)."""

    def luminance(colour: str) -> float:
        channels = [c / 255 for c in _rgb(colour)]
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(first), luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)
