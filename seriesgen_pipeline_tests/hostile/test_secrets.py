"""Database passwords never reach an output: every URL form is masked (SPEC §7).

Passwords come in the user-info part (``user:pw@host``) or as query parameters
(``?password=``, ``?sslpassword=``); each is masked in what the commands print.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from seriesgen_pipeline.persistence.db import mask_secrets, safe_url
from seriesgen_pipeline_tests.cli.helpers import DEMO_LIKE, NOW, run_cli

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


@pytest.mark.postgres
def test_a_generation_stores_no_password_in_dagster_or_its_output(postgres_url: str,
                                                                 tmp_path: Path) -> None:
    """The test server trusts local connections, so a password in the URL is accepted
    (and ignored): a whole generation runs with it, and nothing keeps it."""
    url = make_url(postgres_url).set(password=SECRET).render_as_string(hide_password=False)
    home = tmp_path / "dagster"
    env = {"DAGSTER_HOME": str(home)}
    data = tmp_path / "data.yaml"
    data.write_text(DEMO_LIKE)
    outputs = []
    for args in (("db", "upgrade"), ("load", str(data)), ("generate", "--all", "--now", NOW),
                 ("sessions",), ("conflicts",), ("stats",)):
        done = run_cli(*args, "--database-url", url, env=env)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout + done.stderr)
    assert all(SECRET not in text for text in outputs)
    assert "postgres:***@" in outputs[0]
    stored = [p for p in home.rglob("*") if p.is_file()]
    assert stored, "the generation left no Dagster storage to check"
    for path in stored:
        assert SECRET.encode() not in path.read_bytes(), path
