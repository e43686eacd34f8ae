"""``daemon_night.py``'s report: a table of the nights per round, and the rounds compared.

The tables are the package's own plain-text tables (``text_table`` with ``figures``).
"""

from __future__ import annotations

from benchmarks.daemon_round import LABELS, STEPS, TARGETS, Round
from benchmarks.report import print_checks
from seriesgen_pipeline.service.text_table import text_table

NIGHT_HEADER = ["step", "runs", "peak", "tick->done s", "target s", "runs wall s",
                "queue s mean/max", "spawn s", "launch s", "engine s", "step s", "created",
                "updated", "deleted", "protected", "sessions"]

def _f(value: float | None, digits: int = 1) -> str:
    """A figure, or ``-`` when there is none."""
    return "-" if value is None else f"{value:.{digits}f}"


def print_round(rnd: Round, at_scale: bool) -> None:
    """What was seeded and edited, the step table, the tick figures, the targets, checks."""
    fig, steps = rnd.figures, rnd.figures.get("steps", {})
    seeded = fig.get("seed_data")
    if seeded:
        print(f"# seeded {seeded['series']} series in {seeded['seconds']:.1f} s "
              f"({seeded['branches']} branches, {seeded['zones']} zones)")
    if "protected_marked" in fig:
        print(f"# after cold, marked protected by raw SQL: {fig['protected_marked']}")
    if "edited" in fig:
        print(f"# edited by raw SQL before the edit night: {fig['edited']}")
    rows = []
    for step in STEPS:
        if step not in steps:
            continue
        s = steps[step]
        target = (f"{TARGETS[step]:.0f} {'met' if s['target_met'] else 'MISSED'}"
                  if step in TARGETS else "-")
        if step == "register":
            rows.append([LABELS[step], "-", "-", _f(s["tick_to_done_s"]), target, "-", "-", "-",
                         "-", "-", "-", "-", "-", "-", "-", f"{s['partitions']} partitions"])
            continue
        rows.append([
            LABELS[step], str(s["runs"]), str(s["peak_concurrency"]),
            _f(s["tick_to_done_s"]), target, _f(s["runs_wall_s"]),
            f"{_f(s['queue_s']['mean'])} / {_f(s['queue_s']['max'])}",
            _f(s["spawn_s"]["mean"]), _f(s["launch_s"]["mean"]), _f(s["engine_s"]),
            _f(s["step_s"]), str(s["created"]), str(s["updated"]), str(s["deleted"]),
            str(s["protected"]), str(s["sessions"]),
        ])
    if rows:
        print()
        print(text_table(NIGHT_HEADER, rows, figures=True))
        print("  tick->done: tick start -> last run ended (register: -> every partition "
              "registered); runs wall: first run created -> last ended")
        print("  queue: created -> RUN_START per run (spawn: the part after dequeue); launch: "
              "RUN_START -> first STEP_START; engine / step: sums over the runs")
        print("  peak: most runs in progress at once; created..protected: generation_log of "
              "the step's runs; sessions: class_sessions rows after the step")
    if "daemon_start_to_first_tick_s" in fig:
        print(f"  daemon start -> first sensor tick {fig['daemon_start_to_first_tick_s']:.1f} s; "
              f"sensor tick that registered and requested: "
              f"{_f(steps.get('register', {}).get('tick_s'))} s; schedule tick lag (tick -> "
              f"first run created): warm {_f(steps.get('warm', {}).get('tick_lag_s'))} s, "
              f"no-op {_f(steps.get('noop', {}).get('tick_lag_s'))} s; edit -> sensor tick "
              f"{_f(steps.get('edit', {}).get('edit_to_tick_s'))} s")
    targets = [s for s in STEPS if s in steps and s in TARGETS]
    if targets:
        print("\n  targets (N=10,000, D=365, this 2-core machine; tick -> done)"
              + ("" if at_scale else " - informative only at this scale") + ":")
        for step in targets:
            s = steps[step]
            print(f"    {'met   ' if s['target_met'] else 'MISSED'}  {LABELS[step]} <= "
                  f"{TARGETS[step]:.0f} s: {s['tick_to_done_s']:.1f} s")
    print_checks(rnd.checks)
    if fig.get("kept"):
        print(f"\n  kept: {', '.join(fig['kept'])}; DAGSTER_HOME {fig['dagster_home']}")


def print_comparison(rounds: list[Round]) -> None:
    """Tick -> done and peak concurrency per step, one pair of columns per limit."""
    rows = []
    for step in STEPS:
        row = [LABELS[step]]
        for rnd in rounds:
            s = rnd.figures.get("steps", {}).get(step)
            if s is None:
                row += ["-", "-"]
            elif step == "register":
                row += [_f(s["tick_to_done_s"]), "-"]
            else:
                row += [_f(s["tick_to_done_s"]), str(s["peak_concurrency"])]
        rows.append(row)
    headers = ["step"]
    for rnd in rounds:
        headers += [f"limit {rnd.figures.get('concurrency')}: tick->done s", "peak"]
    print("\n# comparison of the seriesgen/generation limit")
    print(text_table(headers, rows, figures=True))

