"""The application database of SPEC §3, as SQLAlchemy 2 models.

All instants are stored in UTC and read back timezone-aware, on SQLite too
(``UTCDateTime``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from seriesgen_pipeline.core.limits import (
    BRANCH_ID_LENGTH,
    KEY_LENGTH,
    RULE_LENGTH,
    TEXT_LENGTH,
    TIME_OF_DAY_LENGTH,
    TIMEZONE_LENGTH,
)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """An aware UTC instant on every backend (SQLite stores it naive, in UTC)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given for a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class DateList(sa.types.TypeDecorator[list[date]]):
    """A list of dates stored as a JSON array of ``YYYY-MM-DD`` strings."""

    impl = sa.JSON
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        return sorted({d.isoformat() if isinstance(d, date) else str(d) for d in value})

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        return [date.fromisoformat(v) for v in value]


BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class Base(DeclarativeBase):
    """Declarative base of the application tables."""


class Branch(Base):
    __tablename__ = "branches"

    id: Mapped[str] = mapped_column(sa.String(BRANCH_ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(TEXT_LENGTH))


class SchedulingConfig(Base):
    __tablename__ = "scheduling_configs"
    __table_args__ = (
        sa.CheckConstraint("scope IN ('base', 'branch', 'series')", name="ck_config_scope"),
        sa.Index("uq_config_base", "scope", unique=True,
                 sqlite_where=sa.text("scope = 'base'"),
                 postgresql_where=sa.text("scope = 'base'")),
        sa.Index("uq_config_branch", "branch_id", unique=True,
                 sqlite_where=sa.text("scope = 'branch'"),
                 postgresql_where=sa.text("scope = 'branch'")),
        sa.Index("uq_config_series", "series_id", unique=True,
                 sqlite_where=sa.text("scope = 'series'"),
                 postgresql_where=sa.text("scope = 'series'")),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(sa.String(16))
    branch_id: Mapped[str | None] = mapped_column(sa.String(BRANCH_ID_LENGTH))
    series_id: Mapped[int | None] = mapped_column(sa.Integer)
    horizon_days: Mapped[int | None] = mapped_column(sa.Integer)
    timezone: Mapped[str | None] = mapped_column(sa.String(TIMEZONE_LENGTH))
    default_duration_minutes: Mapped[int | None] = mapped_column(sa.Integer)
    default_capacity: Mapped[int | None] = mapped_column(sa.Integer)
    open_time: Mapped[str | None] = mapped_column(sa.String(TIME_OF_DAY_LENGTH))
    close_time: Mapped[str | None] = mapped_column(sa.String(TIME_OF_DAY_LENGTH))
    closed_dates: Mapped[list[date] | None] = mapped_column(DateList)
    generation_enabled: Mapped[bool | None] = mapped_column(sa.Boolean)
    cleanup_grace_days: Mapped[int | None] = mapped_column(sa.Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ClassSeries(Base):
    __tablename__ = "class_series"
    # AUTOINCREMENT: SQLite never reuses the id of a deleted (retired) series.
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012 - SQLAlchemy's own idiom

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(sa.String(KEY_LENGTH), unique=True)
    branch_id: Mapped[str] = mapped_column(sa.String(BRANCH_ID_LENGTH))
    title: Mapped[str] = mapped_column(sa.String(TEXT_LENGTH))
    instructor: Mapped[str | None] = mapped_column(sa.String(TEXT_LENGTH))
    room: Mapped[str | None] = mapped_column(sa.String(TEXT_LENGTH))
    capacity: Mapped[int | None] = mapped_column(sa.Integer)
    recurrence: Mapped[str] = mapped_column(sa.String(RULE_LENGTH))
    start_time: Mapped[str] = mapped_column(sa.String(TIME_OF_DAY_LENGTH))
    duration_minutes: Mapped[int | None] = mapped_column(sa.Integer)
    start_date: Mapped[date] = mapped_column(sa.Date)
    end_date: Mapped[date | None] = mapped_column(sa.Date)
    exdates: Mapped[list[date]] = mapped_column(DateList, default=list, server_default="[]")
    version: Mapped[int] = mapped_column(sa.Integer, default=1, server_default="1")
    last_generated_through: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ClassSession(Base):
    __tablename__ = "class_sessions"
    __table_args__ = (
        sa.UniqueConstraint("origin_series_id", "occurrence_key",
                            name="uq_class_sessions_occurrence"),
        sa.Index("ix_class_sessions_series_key_start", "series_key", "starts_at"),
        sa.Index("ix_class_sessions_branch_start", "branch_id", "starts_at"),
        sa.Index("ix_class_sessions_room", "branch_id", "room", "starts_at"),
        sa.Index("ix_class_sessions_instructor", "branch_id", "instructor", "starts_at"),
        # A series' rows from an instant on: the planner's reads and counts.
        sa.Index("ix_class_sessions_origin_start", "origin_series_id", "starts_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    series_id: Mapped[int | None] = mapped_column(sa.Integer)
    origin_series_id: Mapped[int] = mapped_column(sa.Integer)
    series_key: Mapped[str] = mapped_column(sa.String(KEY_LENGTH))
    occurrence_key: Mapped[str] = mapped_column(sa.String(10))
    branch_id: Mapped[str] = mapped_column(sa.String(BRANCH_ID_LENGTH))
    title: Mapped[str] = mapped_column(sa.String(TEXT_LENGTH))
    instructor: Mapped[str | None] = mapped_column(sa.String(TEXT_LENGTH))
    room: Mapped[str | None] = mapped_column(sa.String(TEXT_LENGTH))
    capacity: Mapped[int] = mapped_column(sa.Integer)
    timezone: Mapped[str] = mapped_column(sa.String(TIMEZONE_LENGTH))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(
        sa.String(16), default="scheduled", server_default="scheduled"
    )
    detached: Mapped[bool] = mapped_column(
        sa.Boolean, default=False, server_default=sa.false()
    )
    booked_count: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    config_hash: Mapped[str | None] = mapped_column(sa.String(64))
    run_id: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Notification(Base):
    __tablename__ = "notifications"
    # Retention's prune finds a notification's newer ones of its series and code.
    __table_args__ = (sa.Index("ix_notifications_series_code", "series_key", "code", "id"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    recipient_type: Mapped[str] = mapped_column(sa.String(16))
    recipient: Mapped[str] = mapped_column(sa.String(320))
    kind: Mapped[str] = mapped_column(sa.String(64))
    severity: Mapped[str] = mapped_column(sa.String(16))
    series_key: Mapped[str | None] = mapped_column(sa.String(KEY_LENGTH))
    code: Mapped[str] = mapped_column(sa.String(64))
    message: Mapped[str] = mapped_column(sa.Text)
    details: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    dedupe_key: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class GenerationLog(Base):
    __tablename__ = "generation_log"
    __table_args__ = (
        sa.Index("ix_generation_log_run", "run_id"),
        sa.Index("ix_generation_log_series", "series_key", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(sa.String(64))
    series_key: Mapped[str] = mapped_column(sa.String(KEY_LENGTH))
    status: Mapped[str] = mapped_column(sa.String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created: Mapped[int] = mapped_column(sa.Integer, default=0)
    updated: Mapped[int] = mapped_column(sa.Integer, default=0)
    deleted: Mapped[int] = mapped_column(sa.Integer, default=0)
    protected: Mapped[int] = mapped_column(sa.Integer, default=0)
    error: Mapped[str | None] = mapped_column(sa.Text)
    config_hash: Mapped[str | None] = mapped_column(sa.String(64))


class SeriesSnapshot(Base):
    """A series and its resolved configuration as a run took them (FR-011).

    Stored once per fingerprint: a run stores a series' snapshot only when its
    fingerprint differs from that of the series' latest stored snapshot, so a row
    is the snapshot every run of the series generated from, from ``taken_at`` (by
    ``run_id``) until the series' next snapshot.
    """

    __tablename__ = "series_snapshots"
    __table_args__ = (sa.Index("ix_series_snapshots_key_taken", "series_key", "taken_at"),)

    run_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    series_key: Mapped[str] = mapped_column(sa.String(KEY_LENGTH), primary_key=True)
    series_id: Mapped[int | None] = mapped_column(sa.Integer)
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime)
    now: Mapped[datetime] = mapped_column(UTCDateTime)
    fingerprint: Mapped[str | None] = mapped_column(sa.String(64))
    config_hash: Mapped[str | None] = mapped_column(sa.String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(sa.JSON)


class GenerationRun(Base):
    """One row per run that took its snapshots: when, as of which ``now``, how many
    series it snapshotted and how many of those snapshots were new (stored)."""

    __tablename__ = "generation_runs"
    __table_args__ = (sa.Index("ix_generation_runs_started", "started_at"),)

    run_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    now: Mapped[datetime] = mapped_column(UTCDateTime)
    series: Mapped[int] = mapped_column(sa.Integer)
    snapshots_stored: Mapped[int] = mapped_column(sa.Integer)


class SeriesConflict(Base):
    """The current conflicts of each series; a run replaces a series' conflicts when
    they changed, and leaves them (with the run and instant that found them) otherwise."""

    __tablename__ = "series_conflicts"
    __table_args__ = (sa.Index("ix_series_conflicts_series", "series_key"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    series_key: Mapped[str] = mapped_column(sa.String(KEY_LENGTH))
    code: Mapped[str] = mapped_column(sa.String(64))
    severity: Mapped[str] = mapped_column(sa.String(16))
    message: Mapped[str] = mapped_column(sa.Text)
    dates: Mapped[list[str]] = mapped_column(sa.JSON)
    details: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    config_hash: Mapped[str | None] = mapped_column(sa.String(64))
    run_id: Mapped[str | None] = mapped_column(sa.String(64))
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime)


class GenerationState(Base):
    """What the last complete generation of a series was made from.

    When a series' fingerprint and the time-zone database are unchanged since its
    last complete generation, a run only expands and plans the occurrences beyond
    ``generated_through``; a full reconcile is still made every few days.
    """

    __tablename__ = "generation_state"

    series_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(sa.String(64))
    tz_version: Mapped[str] = mapped_column(sa.String(32))
    generated_through: Mapped[datetime] = mapped_column(UTCDateTime)
    reconciled_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The ``now`` of the run that wrote the row; how many rows the series had
    # starting at or after it once that run's writes were committed (counted in the
    # same transaction: a later difference means rows were added or removed since);
    # what is behind its warnings (dates of the date-based ones, no occurrence at
    # all). NULL in rows written before migration 0003: a full reconcile.
    as_of: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    row_count: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    warn_dates: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)


class SeriesChanges(Base):
    """One row: how many changes of scheduling inputs the database has seen.

    Triggers (migration 0005) bump ``value`` on every insert, delete and update of
    ``branches``, ``scheduling_configs`` and ``class_series`` (but its
    ``last_generated_through``), whoever writes; the change sensor compares it with
    the value it saw last.
    """

    __tablename__ = "series_changes"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")


class SessionChange(Base):
    """Where ``class_sessions`` changed since the double bookings were last brought up
    to date: per statement, per (resource, branch, value) group, the span of starts.

    Triggers (migrations 0006, 0010) append a row for every insert, and for every
    update that leaves the row scheduled (its new version), whoever writes; the
    double-booking check re-examines those spans and deletes the rows it has read.
    A deleted or cancelled row is logged in ``session_removals`` instead.
    """

    __tablename__ = "session_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    resource: Mapped[str] = mapped_column(sa.String(16))
    branch_id: Mapped[str] = mapped_column(sa.String(BRANCH_ID_LENGTH))
    value: Mapped[str] = mapped_column(sa.String(TEXT_LENGTH))
    low: Mapped[datetime | None] = mapped_column(UTCDateTime)
    high: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SessionRemoval(Base):
    """A session that left the double bookings since they were last brought up to
    date: deleted, or updated in what a double booking depends on (its pairs as they
    were go; if it is scheduled now, ``session_changes`` holds its new span).

    Triggers (migration 0010) append its id, whoever writes; the double-booking
    check deletes the stored pairs of those ids and the rows it has read.
    """

    __tablename__ = "session_removals"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    session_id: Mapped[int] = mapped_column(sa.BigInteger)


class SessionOverlap(Base):
    """Every pair of scheduled sessions of two series that overlap in one branch's room
    (or instructor), as of the last double-booking check; ``a_id < b_id``.

    A side's ``*_starts_at`` is None when its stored start cannot be read.
    """

    __tablename__ = "session_overlaps"
    __table_args__ = (
        sa.Index("ix_session_overlaps_group", "resource", "branch_id", "value"),
        sa.Index("ix_session_overlaps_a_series", "a_series_id"),
        sa.Index("ix_session_overlaps_b_series", "b_series_id"),
        sa.Index("ix_session_overlaps_a_id", "a_id"),
        sa.Index("ix_session_overlaps_b_id", "b_id"),
    )

    resource: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    a_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    b_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    branch_id: Mapped[str] = mapped_column(sa.String(BRANCH_ID_LENGTH))
    value: Mapped[str] = mapped_column(sa.String(TEXT_LENGTH))
    a_series_id: Mapped[int] = mapped_column(sa.Integer)
    b_series_id: Mapped[int] = mapped_column(sa.Integer)
    a_series_key: Mapped[str] = mapped_column(sa.String(KEY_LENGTH))
    b_series_key: Mapped[str] = mapped_column(sa.String(KEY_LENGTH))
    a_occurrence: Mapped[str] = mapped_column(sa.String(10))
    b_occurrence: Mapped[str] = mapped_column(sa.String(10))
    a_starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    b_starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SessionOverlapsState(Base):
    """One row: when ``session_overlaps`` was last rebuilt from a scan of every session.

    None until the first check (sessions written before migration 0006 were never
    logged) and after a ``TRUNCATE`` of ``class_sessions``.
    """

    __tablename__ = "session_overlaps_state"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    full_scan_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
