"""What every command of `outbox-db` shares: the URL and JSON options, one-line failures."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import click

from outbox_db.errors import OutboxError, PermissionDenied

if TYPE_CHECKING:
    from collections.abc import Callable

    from outbox_db.records import Role

__all__ = ["fail_clearly", "json_option", "url_option"]

URL_HELP: Final = "PostgreSQL URL (default: $DATABASE_URL). Its password is never printed."

url_option = click.option("--url", envvar="DATABASE_URL", required=True, help=URL_HELP)
json_option = click.option(
    "--json", "as_json", is_flag=True, help="One JSON document per line, for scripts."
)


def fail_clearly(action: Callable[[], None], *, role: Role | None = None) -> None:
    """Turn the boundary's errors into a one-line message and exit status 1."""
    try:
        action()
    except PermissionDenied as error:
        hint = f" (is the login a member of {role}?)" if role else ""
        msg = f"{error}{hint}"
        raise click.ClickException(msg) from error
    except OutboxError as error:
        raise click.ClickException(str(error)) from error
