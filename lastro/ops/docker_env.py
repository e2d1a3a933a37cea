"""The .env beside the compose file of `lastro deploy docker`: the containers' secrets, made here once.

compose.yaml reads it twice: as the app's env_file (SECRET_KEY and the settings an operator adds) and for
its own `${...}` values (POSTGRES_PASSWORD, in DATABASE_URL and in the postgres service). It is created
with fresh random secrets; a later run only appends a secret it lacks, and never changes a value.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable

from lastro.ops.docker import image_name, template
from lastro.settings import Settings

__all__ = ["env_file_text"]


def env_file_text(
    existing: str | None,
    settings: Settings,
    *,
    postgres: bool,
    token: Callable[[], str] = lambda: secrets.token_urlsafe(48),
) -> str | None:
    """The .env beside compose.yaml: created with fresh secrets, or `existing` with only the secrets it
    lacks appended; None when it already has them all. A value already there is never changed."""
    image = image_name(settings)
    text = existing
    if text is None:
        text = template("docker.env").substitute(service=image, secret_key=token())
        # Compose names the containers, the network and the volumes after the project.
        text += "# The compose project: containers, network and volumes are named after it.\n"
        text += f"COMPOSE_PROJECT_NAME={image}\n"
    present = set(re.findall(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=", text, re.MULTILINE))
    wanted = {"SECRET_KEY": "The key lastro signs with (tokens, cookies): at least 32 random characters."}
    if postgres:
        wanted["POSTGRES_PASSWORD"] = "The postgres service's password, also in DATABASE_URL (compose.yaml)."
    missing = [name for name in wanted if name not in present]
    if existing is not None and not missing:
        return None
    if text and not text.endswith("\n"):
        text += "\n"
    for name in missing:
        text += f"# {wanted[name]}\n{name}={token()}\n"
    return text
