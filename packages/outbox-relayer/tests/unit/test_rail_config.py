"""load_rails: endpoints per rail_type from TOML, clear errors naming the key, secrets kept out of sight."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from outbox_relayer import RailConfigError, RailEndpoint, Secret, load_rails

if TYPE_CHECKING:
    from pathlib import Path

SECRET = "tok-77e1-SECRET"  # noqa: S105 - a made-up token to look for


def write(tmp_path: Path, text: str) -> Path:
    """A rails file with the given content."""
    path = tmp_path / "rails.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_rails_are_read_per_rail_type_with_secrets_from_env_and_file(tmp_path: Path) -> None:
    """Each [rails.<rail_type>] table becomes an endpoint; secrets come from env or a file."""
    secret_file = tmp_path / "ach.token"
    secret_file.write_text("Bearer from-file\n", encoding="utf-8")
    path = write(
        tmp_path,
        f"""
[rails.rtp]
url = "https://rtp.example/payments"
timeout_seconds = 2.5
auth_header = "Authorization"
auth_secret_env = "RTP_TOKEN"

[rails.ach]
url = "http://127.0.0.1:8080/payments"
auth_header = "X-Api-Key"
auth_secret_file = "{secret_file}"

[rails.book]
url = "http://book.internal/payments"
""",
    )

    rails = load_rails(path, environ={"RTP_TOKEN": SECRET})

    assert {
        "rtp": RailEndpoint(
            rail_type="rtp",
            url="https://rtp.example/payments",
            timeout_seconds=2.5,
            auth_header="Authorization",
            auth_secret=Secret(SECRET),
        ),
        "ach": RailEndpoint(
            rail_type="ach",
            url="http://127.0.0.1:8080/payments",
            timeout_seconds=10.0,
            auth_header="X-Api-Key",
            auth_secret=Secret("Bearer from-file"),
        ),
        "book": RailEndpoint(rail_type="book", url="http://book.internal/payments"),
    } == rails


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ("timeout_seconds = 1\n", "rails.rtp.url"),
        ('url = "ftp://rtp.example"\n', "rails.rtp.url"),
        ('url = "https://r"\ntimeout_seconds = 0\n', "rails.rtp.timeout_seconds"),
        ('url = "https://r"\ntimeout_seconds = "5"\n', "rails.rtp.timeout_seconds"),
        ('url = "https://r"\ntimeout = 5\n', "rails.rtp.timeout"),
        ('url = "https://r"\nauth_secret_env = "RTP_TOKEN"\n', "rails.rtp.auth_header"),
        ('url = "https://r"\nauth_header = "Authorization"\n', "rails.rtp.auth_secret_env"),
        ('url = "https://r"\nauth_header = "A"\nauth_secret_env = "UNSET"\n', "UNSET"),
    ],
)
def test_invalid_rail_config_names_the_key(tmp_path: Path, table: str, named: str) -> None:
    """A bad or missing value stops loading with a message naming the offending key."""
    path = write(tmp_path, "[rails.rtp]\n" + table)

    with pytest.raises(RailConfigError, match=named):
        load_rails(path, environ={"RTP_TOKEN": SECRET})


def test_file_without_rails_is_refused(tmp_path: Path) -> None:
    """A file with no [rails.<rail_type>] table is an error, not an empty configuration."""
    with pytest.raises(RailConfigError, match=r"no \[rails.<rail_type>\] table"):
        load_rails(write(tmp_path, "[other]\nx = 1\n"))


def test_unreadable_secret_file_names_the_path_and_never_the_content(tmp_path: Path) -> None:
    """A secret file that is missing or unusable is named; its content never shows."""
    bad = tmp_path / "two-lines.token"
    bad.write_text(f"{SECRET}\nsecond line\n", encoding="utf-8")
    missing = tmp_path / "missing.token"
    errors = []
    for secret_file in (bad, missing):
        path = write(
            tmp_path,
            f'[rails.rtp]\nurl = "https://r"\nauth_header = "A"\nauth_secret_file = "{secret_file}"\n',
        )
        with pytest.raises(RailConfigError) as caught:
            load_rails(path)
        errors.append(caught.value)

    assert all(str(error).startswith("rails.rtp.auth_secret_file") for error in errors)
    assert str(missing) in str(errors[1])
    assert [error for error in errors if SECRET in str(error) or SECRET in repr(error)] == []
    assert [error for error in errors if error.__cause__ is not None] == []


def test_secret_repr_and_str_hide_the_value() -> None:
    """A Secret shows only stars; reveal() is the one way to the value."""
    secret = Secret(SECRET)

    assert SECRET not in repr(secret)
    assert SECRET not in str(secret)
    assert SECRET not in f"{secret}"
    assert secret.reveal() == SECRET


def test_endpoint_built_in_code_is_validated_too() -> None:
    """An endpoint made without a file still needs a positive timeout and a header with a secret."""
    with pytest.raises(ValueError, match="timeout_seconds"):
        RailEndpoint(rail_type="rtp", url="https://r", timeout_seconds=0)
    with pytest.raises(ValueError, match="auth_header and auth_secret go together"):
        RailEndpoint(rail_type="rtp", url="https://r", auth_header="Authorization")
