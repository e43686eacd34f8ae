"""Dagster wiring only: resources, partitions, assets, checks, schedules, sensors."""
