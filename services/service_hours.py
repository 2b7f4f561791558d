"""Staffed hours of the call centre: one parser for settings, dialplan and callbacks.

Pure (no database): ``acikkapi.settings`` validates ``ACIKKAPI_SERVICE_HOURS`` with it and
the callback service computes the next staffed moment from its result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time

from services.errors import InvalidField


@dataclass(frozen=True)
class StaffedHours:
    """Daily staffed window in local time, ``[start, end)``; ``end`` 00:00 means midnight.

    A window whose end is before its start runs over midnight (``22:00-06:00``).
    """

    start: time
    end: time

    def is_staffed(self, local: time) -> bool:
        if self.end == time(0, 0):  # "…-24:00"
            return local >= self.start
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


def parse_service_hours(text: str) -> StaffedHours | None:
    """``"24/7"`` → ``None`` (always staffed); ``"09:00-24:00"`` → :class:`StaffedHours`.

    Takes the value of ``Settings.service_hours`` (already validated there); raises
    :class:`InvalidField` for anything else.
    """
    value = text.strip()
    if value == "24/7":
        return None
    try:
        start_s, end_s = value.split("-")
        parts = [(int(p[:2]), int(p[3:])) for p in (start_s, end_s)]
    except ValueError as exc:
        raise InvalidField(
            f"Hizmet saatleri anlaşılamadı: {text}",
            f"Service hours could not be understood: {text}",
        ) from exc
    (h1, m1), (h2, m2) = parts
    if (
        h1 == 24
        or not (0 <= h1 < 24 and 0 <= h2 <= 24 and m1 < 60 and m2 < 60)
        or (h2 == 24 and m2)
    ):
        raise InvalidField(
            f"Hizmet saatleri geçersiz: {text}", f"Service hours are not valid: {text}"
        )
    return StaffedHours(time(h1, m1), time(0, 0) if h2 == 24 else time(h2, m2))
