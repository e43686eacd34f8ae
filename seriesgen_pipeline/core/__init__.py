"""The pure domain of seriesgen: no Dagster, no SQLAlchemy.

One module per concept: ``config`` (precedence and provenance), ``recurrence``
(the RRULE subset), ``timezones`` (wall clock to UTC, DST policy),
``occurrences`` (a series expanded over a window), ``reconcile`` (what to write),
``conflicts`` (what to report) and ``errors``.
"""
