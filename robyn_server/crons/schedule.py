"""Cron expressions with IANA time zones, via croniter (5 fields, or 6 with seconds last, as the reference)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from robyn_server.errors import ApiError

# Where a schedule that names no future date (only in principle: validation refuses them) is parked.
NEVER = datetime(9999, 12, 31, tzinfo=UTC)


def _names_a_date(schedule: str) -> bool:
    try:
        croniter(schedule, datetime.now(UTC)).get_next(datetime)
    except CroniterError:
        return False
    return True


def validate_schedule(schedule: str) -> str:
    """The schedule, or 422 when croniter cannot read it or it names no date at all (`0 0 30 2 *`)."""
    if not isinstance(schedule, str) or not croniter.is_valid(schedule) or not _names_a_date(schedule):
        raise ApiError(
            422,
            f"Invalid cron schedule: '{schedule}'. Reason: Invalid cron schedule. Ensure the schedule uses the "
            "standard cron format (minute hour day_of_month month day_of_week). "
            "Example: '*/5 * * * *' for every 5 minutes.",
        )
    return schedule


def validate_timezone(timezone: str | None) -> str | None:
    if timezone is None:
        return None
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, KeyError):
        raise ApiError(422, f"Invalid timezone: '{timezone}'. Use IANA timezone format (e.g. 'America/New_York').")
    return timezone


def next_run_date(schedule: str, after: datetime, timezone: str | None = None) -> datetime:
    """The first time strictly after `after` that `schedule` names, read in `timezone` (UTC when None)."""
    base = after.astimezone(ZoneInfo(timezone)) if timezone else after.astimezone(UTC)
    try:
        return croniter(schedule, base).get_next(datetime).astimezone(UTC)
    except CroniterError:  # a schedule with no further date must not block the claim of every other cron
        return NEVER
