"""Checks the supervisor runs before it starts any worker, so a broken setup fails once, clearly."""

from __future__ import annotations

from lastro.db.engine import Database
from lastro.settings import Settings

__all__ = ["check_database"]


def check_database(settings: Settings) -> str | None:
    """None when the database answers, else one line naming `DATABASE_URL` and the reason."""
    try:
        database = Database(settings.DATABASE_URL)
    except Exception as exc:
        return f"DATABASE_URL is not usable: {exc}"
    try:
        database.ping()
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"the database at DATABASE_URL={database.display_url} did not answer: {reason}"
    finally:
        database.dispose()
    return None
