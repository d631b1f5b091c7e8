"""When the daily quota comes back and what to say meanwhile: plain time arithmetic, no SDK.

The runner pauses a run on a daily quota until the reset; it needs these without loading a provider's SDK.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

PACIFIC = ZoneInfo("America/Los_Angeles")
_LIMIT_ZERO = re.compile(r"\blimit:\s*0\b")


def quota_is_zero(message: str) -> bool:
    """The 429 says `limit: 0`: the key has no quota for the model at all (or none left today)."""
    return bool(_LIMIT_ZERO.search(message))


def next_daily_reset(now: dt.datetime | None = None) -> dt.datetime:
    """Midnight Pacific after `now`, when per-day quotas reset (aware, in UTC)."""
    local = (now or dt.datetime.now(dt.UTC)).astimezone(PACIFIC)
    midnight = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), PACIFIC)
    return midnight.astimezone(dt.UTC)


def daily_quota_message(model: str, reset: dt.datetime, now: dt.datetime | None = None) -> str:
    hours = max((reset - (now or dt.datetime.now(dt.UTC))).total_seconds() / 3600, 0.0)
    about = f"{hours:.0f} h" if hours >= 1.5 else f"{max(round(hours * 60), 1)} min"
    return (
        f"The daily quota for {model} is used up; it resets at midnight Pacific (in about {about}). The run "
        "is paused and resumes by itself then, or press Resume; a higher tier raises the quota "
        "(https://aistudio.google.com/usage)."
    )
