"""Proof under failure: real ``seriesgen`` processes killed, raced and starved (FR-010, FR-011)."""
