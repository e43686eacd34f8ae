"""Typed errors that carry their data and a message an operator can act on."""

from __future__ import annotations

from seriesgen_pipeline.core import conflicts as codes


class SeriesgenError(Exception):
    """Base class of every error seriesgen raises on purpose."""


class SeriesDefinitionError(SeriesgenError):
    """A series (or the configuration that applies to it) cannot be generated.

    Attributes:
        code: stable conflict code, e.g. ``INVALID_RRULE``.
        field: the field that is wrong.
        scope: where the bad value was set (``series``, ``branch``, ``base``).
        hint: how to fix it.
    """

    def __init__(
        self, code: str, message: str, *, field: str | None = None,
        scope: str | None = None, hint: str | None = None,
    ) -> None:
        self.code = code
        self.field = field
        self.scope = scope
        self.hint = hint
        self.reason = message
        text = message
        if field and scope:
            text = f"{message} (field '{field}', set at {scope} scope)"
        elif field:
            text = f"{message} (field '{field}')"
        if hint:
            text = f"{text}. Fix: {hint}"
        super().__init__(text)


class IncompleteBaseConfigError(SeriesDefinitionError):
    """The base configuration leaves a field unset; every series stops."""

    def __init__(self, missing: list[str]) -> None:
        self.missing = missing
        super().__init__(
            codes.INCOMPLETE_BASE_CONFIG,
            f"base configuration leaves {', '.join(missing)} unset",
            field=missing[0],
            scope="base",
            hint="set every field in the base scope (the 'base:' section of the data file)",
        )


class InvalidRecurrenceError(SeriesDefinitionError):
    """The RRULE text is outside the supported subset or malformed."""

    def __init__(self, rule: str, reason: str) -> None:
        self.rule = rule
        super().__init__(
            codes.INVALID_RRULE,
            f"invalid recurrence {rule!r}: {reason}",
            field="recurrence",
            scope="series",
            hint="use FREQ=DAILY|WEEKLY|MONTHLY with INTERVAL, BYDAY, BYMONTHDAY or COUNT",
        )


class InvalidTimezoneError(SeriesDefinitionError):
    """The resolved time zone is not an IANA zone name."""

    def __init__(self, zone: str, scope: str | None) -> None:
        self.zone = zone
        super().__init__(
            codes.INVALID_TIMEZONE,
            f"unknown time zone {zone!r}",
            field="timezone",
            scope=scope,
            hint="use an IANA name such as 'America/New_York' or 'Europe/London'",
        )


class DataFileError(SeriesgenError):
    """A data file is rejected whole; ``problems`` lists every item and field at fault."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid data file:\n  " + "\n  ".join(problems))


class SafeguardError(SeriesgenError):
    """Writing is refused by the production safeguard (FR-006)."""


class SettingsError(SeriesgenError):
    """An environment variable holds a value seriesgen cannot use."""


class UnreadableValueError(SeriesDefinitionError):
    """A value in one of the series' rows cannot be read (written by another tool).

    Attributes:
        table: the table of the row.
        row: how the row is named (``'west-pilates'``, ``base``, ``branch 'east'``, an id).
        column: the column holding the value.
        value: the value as stored, shortened for the message.
    """

    def __init__(self, table: str, row: str, column: str, value: object, reason: str,
                 *, scope: str | None = None) -> None:
        self.table = table
        self.row = row
        self.column = column
        self.value = _shorten(value)
        super().__init__(
            codes.UNREADABLE_VALUE, f"{table} {row}: {column} {self.value} {reason}",
            field=None, scope=None,
            hint=f"correct the value of {column} in that row (another writer stored it)",
        )
        # The scope is kept for reporting, not repeated in the message (the row names it).
        self.field = column
        self.scope = scope


def _shorten(value: object, limit: int = 60) -> str:
    text = repr(value) if not isinstance(value, str) else f"'{value}'"
    return text if len(text) <= limit else text[:limit - 3] + "...'"
