"""Rate table CSV files: ``prefix,price_per_minute,bill_period,currency`` with a header row."""

from __future__ import annotations

import csv
import io

from outdial.domain.money import to_units
from outdial.domain.rates import Rate, check_rate
from outdial.errors import ValidationError

HEADER = ("prefix", "price_per_minute", "bill_period", "currency")


class RatesFileError(ValidationError):
    """A rate file line that cannot be read (``line`` 0: the file as a whole)."""

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        super().__init__(f"line {line}: {message}")


def parse_rates_csv(text: str) -> list[Rate]:
    """Read every line or raise RatesFileError naming the first bad one."""
    reader = csv.reader(io.StringIO(text))
    rates: dict[str, Rate] = {}
    first = True
    for number, row in enumerate(reader, start=1):
        cells = [c.strip() for c in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        if first and tuple(c.lower() for c in cells) == HEADER:
            first = False
            continue
        first = False
        if len(cells) != 4:
            raise RatesFileError(number, f"expected 4 columns {','.join(HEADER)}")
        prefix, price, period, currency = cells
        try:
            check_rate(prefix, period, currency.upper())
            units = to_units(price)
        except ValueError as exc:
            raise RatesFileError(number, str(exc)) from exc
        if units < 0:
            raise RatesFileError(number, "price must not be negative")
        if prefix in rates:
            raise RatesFileError(number, f"prefix {prefix} appears twice")
        rates[prefix] = Rate(prefix, units, period, currency.upper())
    if not rates:
        raise RatesFileError(0, "no rates in the file")
    return list(rates.values())
