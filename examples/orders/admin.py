"""Administration of the orders service from a shell: `python -m examples.orders.admin create-admin`.

The service itself creates an administrator only on an empty database: admin/admin in development, and in
production only when ADMIN_PASSWORD is set. Administrators of a production service are made here, with its own
settings (`DATABASE_URL`, `MIGRATIONS_DIR`) and password hashing. The password comes from
`ORDERS_ADMIN_PASSWORD` or standard input, never from the command line, which `ps` and the shell history
show to others. A refusal is one `Error: ...` line: exit 1 when the user exists, 2 for
bad input or settings, 3 when the database cannot be used.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import click
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

import lastro
from examples.orders import accounts
from examples.orders.auth import hash_password
from examples.orders.errors import Conflict
from examples.orders.models import TenantIn, UserIn
from examples.orders.settings import OrdersSettings
from lastro.db.engine import Database, DatabaseOptions, safe_url
from lastro.db.migrations import schema_problem
from lastro.db.sqlite import BEGIN_OPTION
from lastro.errors import one_line
from lastro.settings import load_settings

__all__ = ["PASSWORD_ENV", "main"]

PASSWORD_ENV = "ORDERS_ADMIN_PASSWORD"
EXIT_EXISTS = 1
EXIT_INPUT = 2
EXIT_DATABASE = 3


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


@click.group()
def main() -> None:
    """Administration of the orders service, with the service's settings (DATABASE_URL, ...)."""


@main.command("create-admin")
@click.option("--tenant", required=True, help="The administrator's tenant; created if it does not exist.")
@click.option("--username", required=True, help="The administrator's login name.")
def create_admin(tenant: str, username: str) -> None:
    """Create an administrator. The password is read from ORDERS_ADMIN_PASSWORD if it is set, else from
    standard input (asked twice, without echo, on a terminal)."""
    try:
        # Creating a user serves nothing and signs nothing: SECRET_KEY and the like are the service's affair.
        settings = load_settings(OrdersSettings)
    except lastro.ConfigurationError as exc:
        fail(str(exc), EXIT_INPUT)
    password = read_password()
    if not password.strip():
        fail(f"the password is empty: give it on standard input or in {PASSWORD_ENV}", EXIT_INPUT)
    try:
        tenant_name = TenantIn(name=tenant).name
        user = UserIn(username=username, password=password, tenant_id=0, is_admin=True)
    except ValidationError as exc:
        fail(describe(exc), EXIT_INPUT)
    database = open_database(settings)
    try:
        tenant_id = create(database, tenant_name, user.username, hash_password(user.password))
    finally:
        database.dispose()
    click.echo(f"created administrator {user.username!r} of tenant {tenant_name!r} (id {tenant_id})")


def read_password() -> str:
    given = os.environ.get(PASSWORD_ENV)
    if given is not None:
        return given
    if sys.stdin.isatty():
        entered: str = click.prompt(
            "Password", hide_input=True, confirmation_prompt=True, default="", show_default=False
        )
        return entered
    return sys.stdin.readline().rstrip("\r\n")


def describe(exc: ValidationError) -> str:
    """The rules the names or the password break, without echoing what was given (it may be the password)."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
    )


def open_database(settings: OrdersSettings) -> Database:
    """The service's database, at the schema its migrations need; never a new empty SQLite file."""
    database = Database(settings.DATABASE_URL, DatabaseOptions.from_settings(settings, 1, create=False))
    path = database.sqlite_path
    if path is not None and not path.exists():
        database.dispose()
        fail(
            f"the database {path} does not exist: check DATABASE_URL, then run "
            f"`lastro db upgrade --migrations {settings.MIGRATIONS_DIR}`",
            EXIT_DATABASE,
        )
    problem = schema_problem(database, settings.MIGRATIONS_DIR)
    if problem is not None:
        database.dispose()
        fail(problem, EXIT_DATABASE)
    return database


def create(database: Database, tenant: str, username: str, password_hash: str) -> int:
    """The tenant (made if missing) and its administrator, in one transaction; returns the tenant's id."""
    try:
        with database.engine.connect() as connection:
            if database.is_sqlite:
                connection.execution_options(**{BEGIN_OPTION: "IMMEDIATE"})
            with connection.begin():
                tenant_id = accounts.ensure_tenant(connection, tenant)
                accounts.create_user(connection, tenant_id, username, password_hash, True)
    except Conflict:
        fail(f"a user named {username!r} exists already: nothing was changed", EXIT_EXISTS)
    except SQLAlchemyError as exc:
        fail(f"could not write to {safe_url(database.url)}: {one_line(exc)}", EXIT_DATABASE)
    return tenant_id


if __name__ == "__main__":
    main(prog_name="python -m examples.orders.admin")
