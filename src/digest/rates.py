"""Rates as people read them, in reports and in the reputation guard's messages."""

from __future__ import annotations


def percent(rate: float) -> str:
    """A rate as people read it, precise enough that one just over a threshold never
    shows as the threshold itself (1 in 988 is 0.101 %, not 0.10 %)."""
    value = rate * 100
    return "0 %" if value == 0 else f"{value:.3g} %" if value < 100 else f"{value:.0f} %"
