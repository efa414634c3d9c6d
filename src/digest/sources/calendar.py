"""arXiv's announcement calendar: which submissions appear on which announcement day.

arXiv announces Sunday–Thursday at 20:00 US Eastern what was submitted before the 14:00 cutoff;
the RSS feed dated the next morning (Monday–Friday) lists it:

    Mon 14:00 → Tue 14:00  appears on Wednesday,  …,
    Thu 14:00 → Fri 14:00  appears on Monday,
    Fri 14:00 → Mon 14:00  appears on Tuesday.

So for an announcement day ``D`` the window ends at 14:00 ET on the weekday before ``D`` and
starts at 14:00 ET on the weekday before that. Holidays shift this; days reconstructed this way
are marked approximate in the digest.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

ET = ZoneInfo("America/New_York")
CUTOFF = dt.time(14, 0)


def is_announcement_weekday(day: dt.date) -> bool:
    return day.weekday() < 5


def previous_weekday(day: dt.date) -> dt.date:
    day -= dt.timedelta(days=1)
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    return day


def next_weekday(day: dt.date) -> dt.date:
    day += dt.timedelta(days=1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def submission_window(announced: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) in UTC of the submissions announced on ``announced`` (a weekday)."""
    if not is_announcement_weekday(announced):
        raise ValueError(f"{announced} is a weekend day: arXiv announces nothing on it")
    end_day = previous_weekday(announced)
    start_day = previous_weekday(end_day)
    start = dt.datetime.combine(start_day, CUTOFF, tzinfo=ET).astimezone(dt.UTC)
    end = dt.datetime.combine(end_day, CUTOFF, tzinfo=ET).astimezone(dt.UTC)
    return start, end


def announcement_day(submitted: dt.datetime) -> dt.date:
    """The announcement day of a submission time (aware datetime)."""
    local = submitted.astimezone(ET)
    day = local.date()
    # submissions on a weekend or after the cutoff roll to the next weekday's batch
    if day.weekday() >= 5 or local.time() >= CUTOFF:
        day = next_weekday(day)
    # that batch is announced on the following weekday's feed
    return next_weekday(day)


def submission_days(announced: dt.date) -> list[dt.date]:
    """The UTC calendar days that the submission window of ``announced`` touches."""
    start, end = submission_window(announced)
    days = []
    d = start.date()
    while d <= (end - dt.timedelta(seconds=1)).date():
        days.append(d)
        d += dt.timedelta(days=1)
    return days


def weekdays(start: dt.date, end: dt.date) -> list[dt.date]:
    out = []
    d = start
    while d <= end:
        if is_announcement_weekday(d):
            out.append(d)
        d += dt.timedelta(days=1)
    return out
