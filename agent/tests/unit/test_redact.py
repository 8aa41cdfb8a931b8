"""A secret never reaches a message, and a short one does not mangle it."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from datamigrate_agent.extract import live
from datamigrate_agent.nodes import _engine
from datamigrate_agent.redact import ANYWHERE_FROM, MASK, mask_secret

DRIVER_TEXT = (
    "Adaptive Server connection failed (127.0.0.1:1)\n"
    "DB-Lib error message 20009, severity 9:\nUnable to connect: Adaptive Server is unavailable"
)


class _DriverError(Exception):
    """A pymssql OperationalError's shape: ``args[0] == (number, bytes)``."""


def test_a_one_letter_password_leaves_the_drivers_message_readable() -> None:
    error = _DriverError((20009, DRIVER_TEXT.encode()))
    assert live._driver_detail(error, "a") == (
        "Adaptive Server connection failed (127.0.0.1:1); "
        "Unable to connect: Adaptive Server is unavailable"
    )


@pytest.mark.parametrize(
    ("text", "secret", "masked"),
    [
        ("login 'ab' rejected for ab", "ab", f"login '{MASK}' rejected for {MASK}"),
        ("about abc tab", "ab", "about abc tab"),
        ("key 7 (of 17)", "7", f"key {MASK} (of 17)"),
        ("x!a and !ab", "!a", f"x{MASK} and !ab"),
        ("it is s3cr3t-pw-long.", "s3cr3t-pw-long", f"it is {MASK}."),
        ("glued:xxs3cr3t-pw-longyy", "s3cr3t-pw-long", f"glued:xx{MASK}yy"),
    ],
)
def test_the_secret_goes_as_a_token_or_anywhere_when_long(
    text: str, secret: str, masked: str
) -> None:
    assert mask_secret(text, secret) == masked


#: Where a driver or a DSN puts a password; ``{}`` is the password (URL-encoded in the URL).
PLACES = [
    "Server=h;Database=d;Password={};User=u",
    "host=h password='{}' dbname=d",
    "postgresql://user:{}@127.0.0.1:5432/db",
    "login failed: '{}'",
    'bad value "{}" (see the log)',
]


@pytest.mark.parametrize("secret", ["a", "p@ss", "x y", "ünï", "a;b"])
@pytest.mark.parametrize("place", PLACES)
def test_a_short_secret_never_shows_where_drivers_put_it(secret: str, place: str) -> None:
    assert len(secret) < ANYWHERE_FROM
    written = quote(secret, safe="") if "://" in place else secret
    assert mask_secret(place.format(written), secret) == place.format(MASK)


def test_password_values_go_even_when_the_secret_is_not_known() -> None:
    text = "invalid dsn: host=h pwd=hunter2 user=u; URL https://bob:tok3n@git.example/x"
    assert mask_secret(text, None) == (
        f"invalid dsn: host=h pwd={MASK} user=u; URL https://bob:{MASK}@git.example/x"
    )
    assert mask_secret("password = 'it''s' ok", None) == f"password = '{MASK}' ok"


def test_an_unreachable_postgres_never_shows_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import psycopg2

    from datamigrate_agent.config import MigrateConfig
    from datamigrate_agent.errors import RetryableError

    def refuse(**params: object) -> None:
        raise psycopg2.OperationalError(f"invalid dsn near password={params['password']} q")

    monkeypatch.setattr(psycopg2, "connect", refuse)
    monkeypatch.setenv("DATAMIGRATE_PG_DSN", "postgresql://u:k@127.0.0.1:1/db")
    for key in ("HOST", "PORT", "USER", "PASSWORD", "DBNAME"):
        monkeypatch.delenv(f"DATAMIGRATE_PG_{key}", raising=False)
    cfg = MigrateConfig(workspace=".", project_name="p", target="postgres")
    with pytest.raises(RetryableError) as err, _engine.connect(cfg):
        pass
    assert str(err.value) == f"PostgreSQL unreachable: invalid dsn near password={MASK} q"
    assert err.value.__cause__ is None
