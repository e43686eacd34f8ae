"""The synthetic data of the benchmarks, and the booking app's and the editors' raw writes.

Deterministic for a seed: the same ``--seed`` gives the same branches, configurations
and series in both scripts.

* ``seed_data``: bulk SQLAlchemy Core inserts straight into ``branches``,
  ``scheduling_configs`` and ``class_series`` (not through the loader): daily,
  weekly (with ``INTERVAL``, one with ``COUNT``) and monthly ordinal / month-day
  rules; branches in 9 zones, 8 of them with DST (Lord Howe's 30-minute shift
  included); branch- and series-scope overrides; closed dates at every scope,
  exdates; a few series in the DST gap or fold; a few 90-minute series that
  double-book a room. Otherwise each series has its own room-and-hour slot, so the
  conflict check has realistic, not quadratic, work.
* ``mark_protected``: ~10% of the future sessions booked, detached or cancelled by
  raw SQL, as the booking app would.
* ``edit_series`` / ``edit_block``: 10% of the series edited by raw SQL (a third each:
  start time, room, rule), a random sample or a block of consecutive keys.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from seriesgen_pipeline.core.config import CONFIG_FIELDS
from seriesgen_pipeline.persistence import repository as repo

ZONES = (  # all but Tokyo observe DST; Lord Howe shifts by 30 minutes
    "America/New_York", "Europe/London", "Europe/Berlin", "Australia/Sydney",
    "America/Los_Angeles", "Australia/Lord_Howe", "America/Chicago", "Pacific/Auckland",
    "Asia/Tokyo",
)
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
MONTHLY_RULES = (
    "FREQ=MONTHLY;BYDAY=1MO", "FREQ=MONTHLY;BYDAY=-1FR", "FREQ=MONTHLY;BYDAY=2TU,4TH",
    "FREQ=MONTHLY;BYMONTHDAY=15", "FREQ=MONTHLY;BYMONTHDAY=1,-1",
    "FREQ=MONTHLY;BYDAY=1SA,3SA",
)
HOURS_PER_ROOM = 16  # one series per room and hour, 06:00..21:00
SERIES_PER_BRANCH = 200
EDITED_FRACTION = 0.10


# A scope row sets only what it overrides: every configuration field None but those.
_CONFIG_NONE: dict[str, Any] = dict.fromkeys(CONFIG_FIELDS)


def _rule(rng: random.Random) -> tuple[str, str]:
    """(kind, RRULE) of one synthetic series."""
    r = rng.random()
    if r < 0.12:
        return "daily", "FREQ=DAILY"
    if r < 0.17:
        return "daily/2", "FREQ=DAILY;INTERVAL=2"
    if r < 0.60:
        days = sorted(rng.sample(range(7), rng.randint(3, 5)))
        return "weekly", "FREQ=WEEKLY;BYDAY=" + ",".join(WEEKDAYS[d] for d in days)
    if r < 0.78:
        days = sorted(rng.sample(range(7), rng.randint(2, 3)))
        return "weekly/2", "FREQ=WEEKLY;INTERVAL=2;BYDAY=" + ",".join(WEEKDAYS[d] for d in days)
    if r < 0.80:
        return "weekly+count", "FREQ=WEEKLY;BYDAY=TU,TH;COUNT=80"
    return "monthly", rng.choice(MONTHLY_RULES)


def seed_data(engine: sa.Engine, *, n_series: int, horizon: int, now: datetime,
              seed: int) -> dict[str, Any]:
    """Insert the synthetic branches, configurations and series; returns what was made."""
    rng = random.Random(seed)
    today = now.date()
    stamp = now - timedelta(days=30)
    n_branches = max(len(ZONES), -(-n_series // SERIES_PER_BRANCH))  # every zone in use
    base = {
        **_CONFIG_NONE, "scope": "base", "horizon_days": horizon, "timezone": "UTC",
        "default_duration_minutes": 60, "default_capacity": 20, "open_time": "06:00",
        "close_time": "22:00", "generation_enabled": True, "cleanup_grace_days": 0,
        "closed_dates": [date(today.year, 12, 25), date(today.year + 1, 1, 1)],
        "updated_at": stamp,
    }
    branches, branch_configs = _branches(rng, n_branches, today=today, horizon=horizon,
                                         stamp=stamp)
    series, kinds, per_series_config = _series(rng, n_series, n_branches, today=today,
                                               horizon=horizon, stamp=stamp)
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(sa.insert(repo.configs_t), [base])
        conn.execute(sa.insert(repo.branches_t), branches)
        conn.execute(sa.insert(repo.configs_t), branch_configs)
        conn.execute(sa.insert(repo.series_t), series)
        ids = dict(conn.execute(sa.select(repo.series_t.c.key, repo.series_t.c.id)).all())
        rows = [{**_CONFIG_NONE, **cfg, "scope": "series", "series_id": ids[key],
                 "updated_at": stamp} for key, cfg in per_series_config.items()]
        if rows:
            conn.execute(sa.insert(repo.configs_t), rows)
    return {
        "seconds": round(time.perf_counter() - started, 3), "series": n_series,
        "branches": n_branches, "zones": len({c["timezone"] for c in branch_configs}),
        "series_configs": len(per_series_config), "rules": dict(sorted(kinds.items())),
        "series_with_exdates": sum(1 for s in series if s["exdates"]),
        "series_with_end_date": sum(1 for s in series if s["end_date"]),
    }


def _branches(rng: random.Random, n_branches: int, *, today: date, horizon: int,
              stamp: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The branches, and their branch-scope configurations (zone, hours, closed dates...)."""
    branches, configs = [], []
    for b in range(n_branches):
        bid = f"b{b:03d}"
        branches.append({"id": bid, "name": f"Branch {b}"})
        config = {**_CONFIG_NONE, "scope": "branch", "branch_id": bid,
                  "timezone": ZONES[b % len(ZONES)], "updated_at": stamp}
        if b % 3 == 1:
            config["open_time"] = "07:00"
        if b % 4 == 2:
            config["close_time"] = "21:30"
        if b % 2 == 0:
            config["default_capacity"] = 15 + b % 10
        if b % 5 == 3:
            config["default_duration_minutes"] = 45
        config["closed_dates"] = [today + timedelta(days=rng.randint(1, horizon))
                                  for _ in range(2)]
        configs.append(config)
    return branches, configs


def _series(rng: random.Random, n_series: int, n_branches: int, *, today: date, horizon: int,
            stamp: datetime) -> tuple[list[dict[str, Any]], Counter[str], dict[str, Any]]:
    """The series rows, how many of each kind of rule, and the series-scope overrides."""
    series, kinds, per_series_config = [], Counter[str](), {}
    for i in range(n_series):
        b, k = i % n_branches, i // n_branches
        kind, rule = _rule(rng)
        kinds[kind] += 1
        room, start_time = f"Room {k // HOURS_PER_ROOM + 1}", f"{6 + k % HOURS_PER_ROOM:02d}:00"
        if rng.random() < 0.01:  # in the DST gap or fold somewhere; its own room
            start_time, room = rng.choice(("02:30", "01:30", "02:15")), f"Night room {k}"
            kinds["dst-edge"] += 1
        u = rng.random()
        duration = 90 if u < 0.03 else None if u < 0.20 else 45 if u < 0.50 else 60
        start = (today + timedelta(days=rng.randint(1, 120)) if rng.random() < 0.10
                 else today - timedelta(days=rng.randint(7, 200)))
        end = (max(today, start) + timedelta(days=rng.randint(30, 730))
               if rng.random() < 0.20 else None)
        exdates = ([today + timedelta(days=rng.randint(0, horizon))
                    for _ in range(rng.randint(1, 4))] if rng.random() < 0.30 else [])
        key = f"bench-{i:06d}"
        series.append({
            "key": key, "branch_id": f"b{b:03d}", "title": f"Class {i}",
            "instructor": f"Coach {b}-{k // 4}", "room": room,
            "capacity": None if rng.random() < 0.30 else rng.randint(8, 30),
            "recurrence": rule, "start_time": start_time, "duration_minutes": duration,
            "start_date": start, "end_date": end, "exdates": exdates, "version": 1,
            "created_at": stamp, "updated_at": stamp,
        })
        if rng.random() < 0.05:
            choice = rng.randrange(5)
            override: dict[str, Any] = [
                {"default_capacity": 12},
                {"closed_dates": [today + timedelta(days=rng.randint(0, horizon))]},
                {"open_time": "05:00", "close_time": "23:00"},
                {"default_duration_minutes": 50},
                {"timezone": ZONES[(b + 4) % len(ZONES)]},
            ][choice]
            if "timezone" in override:
                series[-1]["room"] = f"Online {i}"  # another zone: keep clear of the rooms
            per_series_config[key] = override
    return series, kinds, per_series_config


def mark_protected(engine: sa.Engine, *, since: datetime) -> dict[str, int]:
    """Mark ~10% of the sessions starting at or after ``since`` as the booking app would."""
    t = repo.sessions_t
    future = sa.and_(t.c.starts_at >= since, t.c.status == "scheduled")
    bucket = t.c.id % 100
    out = {}
    with engine.begin() as conn:
        out["booked"] = conn.execute(sa.update(t).where(future, bucket < 7)
                                     .values(booked_count=1 + t.c.id % 5)).rowcount
        out["detached"] = conn.execute(sa.update(t).where(future, bucket.in_([7, 8]))
                                       .values(detached=True)).rowcount
        out["cancelled"] = conn.execute(sa.update(t).where(future, bucket == 9)
                                        .values(status="cancelled")).rowcount
    return out


def edit_series(engine: sa.Engine, *, seed: int,
                fraction: float = EDITED_FRACTION) -> dict[str, Any]:
    """Edit a random sample of ``fraction`` of the series by raw SQL."""
    rng = random.Random(seed + 1)
    rows = _series_rows(engine, order="id")
    chosen = rng.sample(rows, k=max(3, round(len(rows) * fraction)))
    return {"series": len(chosen), **_edit(engine, chosen)}


def edit_block(engine: sa.Engine, *, seed: int,
               fraction: float = EDITED_FRACTION) -> dict[str, Any]:
    """``edit_series``' edits on a block of consecutive keys instead of a sample."""
    rng = random.Random(seed + 1)
    rows = _series_rows(engine, order="key")
    size = max(3, round(len(rows) * fraction))
    first = rng.randrange(0, len(rows) - size + 1)
    return {"series": size, "block": f"{first}..{first + size - 1}",
            **_edit(engine, rows[first:first + size])}


def _series_rows(engine: sa.Engine, *, order: str) -> list[Any]:
    """``(id, recurrence, start_time, room)`` of every series, ordered by ``order``."""
    with engine.connect() as conn:
        return list(conn.execute(sa.text(
            f"SELECT id, recurrence, start_time, room FROM class_series ORDER BY {order}")))


def _edit(engine: sa.Engine, rows: Sequence[Any]) -> dict[str, int]:
    """Edit the series of ``rows`` by raw SQL, a third each: start time, room, rule."""
    params: dict[str, list[dict[str, Any]]] = {"start_time": [], "room": [], "recurrence": []}
    for n, (sid, rule, start_time, room) in enumerate(rows):
        if n % 3 == 0:
            hour, minute = start_time.split(":")
            new_hour = int(hour) + 1 if int(hour) < 21 else int(hour) - 1
            params["start_time"].append({"id": sid, "v": f"{new_hour:02d}:{minute}"})
        elif n % 3 == 1:
            params["room"].append({"id": sid, "v": f"{room} (moved)"})
        else:
            params["recurrence"].append({"id": sid, "v": _edited_rule(rule)})
    with engine.begin() as conn:
        for column, values in params.items():
            if values:
                conn.execute(sa.text(f"UPDATE class_series SET {column} = :v WHERE id = :id"),
                             values)
    return {"start_time": len(params["start_time"]), "room": len(params["room"]),
            "rule": len(params["recurrence"])}


def _edited_rule(rule: str) -> str:
    """Another rule of the same kind: other weekdays, another monthly rule, or weekly."""
    if rule.startswith("FREQ=MONTHLY"):
        return "FREQ=MONTHLY;BYDAY=2WE" if rule != "FREQ=MONTHLY;BYDAY=2WE" else "FREQ=MONTHLY"
    if rule.startswith("FREQ=DAILY"):
        return "FREQ=WEEKLY;BYDAY=MO,WE,FR"
    parts = dict(p.split("=", 1) for p in rule.split(";"))
    days = parts.get("BYDAY", "MO").split(",")
    parts["BYDAY"] = ",".join(WEEKDAYS[(WEEKDAYS.index(d) + 1) % 7] for d in days)
    return ";".join(f"{k}={v}" for k, v in parts.items())
