"""The deployment's UI in a real browser: headless Chromium renders the Dagster app.

Contract: the webserver of the ``deployment`` fixture serves a UI that, once its
JavaScript has run, shows on the asset lineage page (``/asset-groups``) the three
assets with a failed partition, and on the ``class_sessions`` partitions page
(``/assets/class_sessions?view=partitions``, the broken series' partition selected)
the four partitions, three materialized and one failed, and the run that failed it.
The rendered DOM is read with ``chromium --dump-dom``; a screenshot of each page is
saved in the test's tmp dir. Skips when ``/usr/bin/chromium`` is absent, unless
``CI`` is set (then it fails).
"""

from __future__ import annotations

import html
import os
import re
import subprocess
from pathlib import Path

import pytest

from seriesgen_pipeline_tests.deploy.conftest import BROKEN, GOOD, Deployment

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--window-size=1600,1000",
    # Let the single-page app fetch its GraphQL data and render before the dump.
    "--virtual-time-budget=15000",
]
ASSETS = ["resolved_series_config", "class_sessions", "series_cleanup"]


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail(f"{CHROMIUM} is missing (install Debian's chromium package)")
        pytest.skip(f"{CHROMIUM} is missing (install Debian's chromium package)")
    return CHROMIUM


def _run(chromium: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(chromium), *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=90, check=False)


def _visible_text(dom: str) -> str:
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    return re.sub(r"\s+", " ", html.unescape(text))


def render(chromium: Path, tmp_path: Path, url: str, name: str, expected: list[str]) -> str:
    """The visible text of ``url`` once it shows everything ``expected`` (3 tries), and a
    screenshot of it as ``<name>.png``."""
    text = ""
    for attempt in range(3):
        done = _run(chromium, tmp_path / f"profile-{name}-{attempt}", "--dump-dom", url)
        assert done.returncode == 0, done.stderr[-2000:]
        text = _visible_text(done.stdout)
        if all(item in text for item in expected):
            break
    shot = tmp_path / f"{name}.png"
    done = _run(chromium, tmp_path / f"profile-{name}-shot", f"--screenshot={shot}", url)
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.stat().st_size > 10_000, shot  # an actual picture, not a blank page
    return text


def test_asset_graph_page_shows_the_three_assets_and_the_failure(
        deployment: Deployment, chromium: Path, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{deployment.port}/asset-groups"
    text = render(chromium, tmp_path, url, "asset-graph", [*ASSETS, "failed"])
    for asset in ASSETS:
        assert asset in text, text[:3000]
    # Each asset's node: four partitions, one failed ("75% filled (1 failed)" in 1.13).
    assert text.count("(1 failed)") >= len(ASSETS), text[:3000]
    assert "Join the Dagster community" not in text  # nux is off in deploy/dagster.yaml


def test_partitions_page_shows_the_failed_partition(
        deployment: Deployment, chromium: Path, tmp_path: Path) -> None:
    runs = deployment.graphql("{ runsOrError { ... on Runs { results { runId } } } }")
    (run,) = runs["data"]["runsOrError"]["results"]
    # The partitions tab with the broken series' partition selected.
    url = (f"http://127.0.0.1:{deployment.port}/assets/class_sessions"
           f"?view=partitions&partition={BROKEN}")
    failure = f"Run {run['runId'][:8]} failed, and did not materialize this asset."
    text = render(chromium, tmp_path, url, "class-sessions-partitions",
                  ["Failed (1)", "Materialized (3)", failure])
    assert "4 Partitions" in text, text[:3000]
    assert "Failed (1)" in text and "Materialized (3)" in text, text[:3000]
    for key in [*GOOD, BROKEN]:
        assert key in text, text[:3000]
    assert failure in text, text[:3000]
