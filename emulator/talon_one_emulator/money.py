"""Money and number formatting shared by the rule engine and the responses."""

from __future__ import annotations

import math

__all__ = ["json_number", "round_money"]

# Absorbs binary noise: 2.675 is stored as 2.67499999..., which is still meant to round up.
_NOISE = 1e-7


def round_money(value: float) -> float:
    """Round to cents, half away from zero (``123 * 0.2`` → ``24.6``; ``2.675`` → ``2.68``)."""
    cents = math.floor(abs(value) * 100 + 0.5 + _NOISE) / 100
    return cents if value >= 0 else -cents


def json_number(value: float) -> int | float:
    """An integral float as an int (``49.0`` → ``49``), as Talon.One's JSON prints it."""
    if float(value).is_integer():
        return int(value)
    return value
