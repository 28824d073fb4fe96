"""What may not appear in a one-line setting or a mail header."""

from __future__ import annotations

LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def has_line_break(text: str) -> bool:
    """Whether ``text`` would break a mail header or a one-line field: any line break
    Python knows (CR, LF, U+2028, U+2029, …) or other control character."""
    return any(c in LINE_BREAKS or (ord(c) < 32 and c != "\t") or c == "\x7f" for c in text)
