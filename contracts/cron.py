"""Five-field cron expressions (minute hour day-of-month month day-of-week), in UTC.

Small and dependency-free on purpose: clients validate a schedule with the contract alone,
and the worker needs only "the next matching minute after t". The syntax is the classic
one: `*`, `N`, `A-B`, `*/S`, `A-B/S`, `N/S` (N to the field's end), comma lists, month
names JAN-DEC, weekday names SUN-SAT (0 and 7 are both Sunday), and the macros @yearly,
@annually, @monthly, @weekly, @daily, @midnight, @hourly. As in Vixie cron, when both
day fields are restricted (neither starts with `*`), a day matches if EITHER does.
"""

from __future__ import annotations

import calendar
from bisect import bisect_left
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}
_DAYS = {"SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6}
# (name, lowest, highest, names)
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
# Every valid expression matches within this many years (a 29 February comes at least
# every 8 years); the bound keeps a search finite whatever happens.
_SEARCH_YEARS = 9


class CronError(ValueError):
    """The expression is not a valid five-field cron expression; says which part."""


@dataclass(frozen=True)
class CronExpression:
    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday .. 6 = Saturday
    days_restricted: bool
    weekdays_restricted: bool

    def matches_day(self, day: datetime) -> bool:
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return dom or dow
        return dom and dow

    def next_after(self, t: datetime) -> datetime:
        """The first matching minute strictly after `t` (an aware datetime), in UTC."""
        t = t.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = t.year + _SEARCH_YEARS
        while t.year <= limit:
            if t.month not in self.months:
                t = _next_month(t)
            elif not self.matches_day(t):
                t = t.replace(hour=0, minute=0) + timedelta(days=1)
            elif t.hour not in self.hours:
                i = bisect_left(self.hours, t.hour)
                t = (t.replace(hour=self.hours[i], minute=0) if i < len(self.hours)
                     else t.replace(hour=0, minute=0) + timedelta(days=1))
            else:
                i = bisect_left(self.minutes, t.minute)
                if i < len(self.minutes):
                    return t.replace(minute=self.minutes[i])
                t = t.replace(minute=0) + timedelta(hours=1)
        raise CronError(f"{self.text!r} matches no time in {_SEARCH_YEARS} years")


def _next_month(t: datetime) -> datetime:
    year, month = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
    return t.replace(year=year, month=month, day=1, hour=0, minute=0)


def parse_cron(text: str) -> CronExpression:
    """Parse and validate; `CronError` names the field and the part that is wrong."""
    expr = " ".join(text.split())
    expanded = MACROS.get(expr.lower(), expr)
    if expanded.startswith("@"):
        raise CronError(f"unknown macro {expr!r}; known: {', '.join(MACROS)}")
    parts = expanded.split(" ")
    if len(parts) != 5:
        raise CronError(f"{expr!r} has {len(parts)} field(s); a cron expression has 5: "
                        "minute hour day-of-month month day-of-week (UTC)")
    values = [_parse_field(part, *spec) for part, spec in zip(parts, _FIELDS, strict=True)]
    weekdays = frozenset(d % 7 for d in values[4])
    cron = CronExpression(
        text=expr, minutes=tuple(sorted(values[0])), hours=tuple(sorted(values[1])),
        days=frozenset(values[2]), months=frozenset(values[3]), weekdays=weekdays,
        days_restricted=not parts[2].startswith("*"),
        weekdays_restricted=not parts[4].startswith("*"))
    if cron.days_restricted and not cron.weekdays_restricted and not any(
            d <= calendar.monthrange(2024, m)[1] for m in cron.months for d in cron.days):
        raise CronError(f"{expr!r} never matches: no chosen month has the chosen day(s)")
    return cron


def _parse_field(part: str, name: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    out: set[int] = set()
    for item in part.split(","):
        if not item:
            raise CronError(f"{name} field {part!r}: empty list item")
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{name} field {part!r}: step {step_text!r} is not a "
                                "positive integer")
            step = int(step_text)
        if base == "*":
            first, last = low, high
        elif "-" in base:
            a, _, b = base.partition("-")
            first, last = _value(a, name, low, high, names), _value(b, name, low, high, names)
            if first > last:
                raise CronError(f"{name} field {part!r}: range {base!r} runs backwards")
        else:
            first = _value(base, name, low, high, names)
            last = high if slash else first
        out.update(range(first, last + 1, step))
    return out


def _value(text: str, name: str, low: int, high: int, names: dict[str, int]) -> int:
    if text.upper() in names:
        return names[text.upper()]
    if not text.isdigit():
        raise CronError(f"{name}: {text!r} is not a number"
                        + (f" or a name ({', '.join(names)})" if names else ""))
    value = int(text)
    if not low <= value <= high:
        raise CronError(f"{name}: {value} is outside {low}-{high}")
    return value
