"""Where a number is, in words: LAAFFIC's ``code`` field of call records and push reports."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers


@lru_cache(maxsize=65_536)
def region_name(number: str) -> str | None:
    """``Country(place)`` for an E.164 number without its ``+`` (``China(Shenzhen,
    Guangdong)``), the country alone when the place is unknown or the country itself, None
    when the number cannot be parsed."""
    # The geocoder's data costs about 100 MB: loaded by the first process that needs it.
    from phonenumbers import geocoder

    try:
        parsed = phonenumbers.parse("+" + number)
    except phonenumbers.NumberParseException:
        return None
    country = geocoder.country_name_for_number(parsed, "en")
    place = geocoder.description_for_number(parsed, "en")
    if place and place != country:
        return f"{country}({place})"
    return country or None
