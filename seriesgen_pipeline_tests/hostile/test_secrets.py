"""Database passwords never reach an output: every URL form is masked (SPEC §7).

Passwords come in the user-info part (``user:pw@host``) or as query parameters
(``?password=``, ``?sslpassword=``); each is masked in what the commands print.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from seriesgen_pipeline.persistence.db import mask_secrets, safe_url
from seriesgen_pipeline_tests.cli.helpers import NOW, run_cli

SECRET = "S3cretPW"


@pytest.mark.parametrize("url, shown", [
    (f"postgresql://postgres:{SECRET}@127.0.0.1:5999/x",
     "postgresql://postgres:***@127.0.0.1:5999/x"),
    (f"postgresql://postgres@127.0.0.1:5999/x?password={SECRET}",
     "postgresql://postgres@127.0.0.1:5999/x?password=***"),
    (f"postgresql://postgres@127.0.0.1:5999/x?sslpassword={SECRET}&sslmode=require",
     "postgresql://postgres@127.0.0.1:5999/x?sslmode=require&sslpassword=***"),
    (f"postgresql+psycopg2://u:{SECRET}@h/x?PASSWORD={SECRET}",
     "postgresql+psycopg2://u:***@h/x?PASSWORD=***"),
    ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
])
def test_safe_url_masks_every_form(url: str, shown: str) -> None:
    assert safe_url(url) == shown


def test_mask_secrets_masks_the_url_secrets_in_free_text() -> None:
    url = f"postgresql://u:{SECRET}@h/x?sslpassword=Other-Secret"
    text = f"driver said: password {SECRET} and Other-Secret rejected"
    assert mask_secrets(text, url) == "driver said: password *** and *** rejected"


@pytest.mark.parametrize("url", [
    f"postgresql://postgres:{SECRET}@127.0.0.1:5999/x",
    f"postgresql://postgres@127.0.0.1:5999/x?password={SECRET}",
    f"postgresql://postgres@127.0.0.1:5999/x?sslpassword={SECRET}",
])
@pytest.mark.parametrize("command", [("sessions",), ("conflicts",), ("stats",),
                                     ("db", "upgrade"), ("generate", "--all", "--now", NOW)],
                         ids=lambda c: " ".join(c))
def test_no_command_prints_the_password(url: str, command: tuple[str, ...],
                                        tmp_path: Path) -> None:
    """Port 5999 has no server: every command fails to connect and says so."""
    for given in (("--database-url", url), ()):
        env = {"DAGSTER_HOME": str(tmp_path / "dagster")}
        if not given:
            env["SERIESGEN_DATABASE_URL"] = url
        done = run_cli(*command, *given, env=env)
        assert done.returncode == 2, done.stderr
        assert "127.0.0.1:5999" in done.stderr
        assert SECRET not in done.stdout + done.stderr
        assert "Traceback" not in done.stderr
