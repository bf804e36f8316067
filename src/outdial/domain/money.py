"""Money is stored as integer ten-thousandths of the currency unit, never as floats."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

SCALE = 10_000
# Amounts are stored as 64-bit integers of ten-thousandths; this bound leaves ample headroom.
MAX_AMOUNT = Decimal(10) ** 12


def to_units(value: str | Decimal | int) -> int:
    """Parse an amount such as ``"12.5"`` into ten-thousandths; raise ValueError if malformed."""
    try:
        d = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise ValueError(f"{value!r} is not an amount") from exc
    if not d.is_finite() or abs(d) >= MAX_AMOUNT:
        raise ValueError(f"{value!r} is not an amount below {MAX_AMOUNT:,}")
    return int((d * SCALE).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def format_units(units: int, places: int = 4) -> str:
    """Render ten-thousandths as a decimal string with ``places`` decimals."""
    q = Decimal(units) / SCALE
    return str(q.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))
