"""Fast epoch-millisecond -> ISO-8601 text, and local-midnight offsets per time zone.

`datetime.isoformat` costs a microsecond per call; at 10M events that matters, so the date
part is cached per day and the clock part is plain integer arithmetic.

>>> iso_ms(0)
'1970-01-01T00:00:00.000Z'
>>> iso_ms(1_788_602_460_123)
'2026-09-05T10:01:00.123Z'
>>> utc_offset_s("Europe/London", dt.date(2026, 9, 1))
3600
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

_EPOCH = dt.date(1970, 1, 1)
_HOUR_TEXT: dict[int, str] = {}


def _hour_prefix(hour: int) -> str:
    if len(_HOUR_TEXT) > 100_000:  # bounded: ~11 years of hours
        _HOUR_TEXT.clear()
    day, h = divmod(hour, 24)
    text = _HOUR_TEXT[hour] = f"{(_EPOCH + dt.timedelta(days=day)).isoformat()}T{h:02d}:"
    return text


def iso_ms(ms: int) -> str:
    """Epoch milliseconds (UTC) as `YYYY-MM-DDTHH:MM:SS.mmmZ`."""
    hour, rem = divmod(ms, 3_600_000)
    prefix = _HOUR_TEXT.get(hour) or _hour_prefix(hour)
    minute, rem = divmod(rem, 60_000)
    sec, milli = divmod(rem, 1000)
    return f"{prefix}{minute:02d}:{sec:02d}.{milli:03d}Z"


@lru_cache(maxsize=4096)
def utc_offset_s(tz: str, day: dt.date) -> int:
    """Seconds east of UTC at noon on `day` in `tz` (DST changes at night, so noon is safe)."""
    noon = dt.datetime(day.year, day.month, day.day, 12, tzinfo=ZoneInfo(tz))
    off = noon.utcoffset()
    return int(off.total_seconds()) if off is not None else 0


def day_epoch_s(day: dt.date) -> int:
    """Epoch seconds of `day` 00:00 UTC."""
    return (day - _EPOCH).days * 86_400
