from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lastro.ops.doctor import Context, Finding, run_checks
from tests.support.machines import LOCAL, deploy_settings, fake_machine


class Doctor:
    """Runs every check on `deploy_settings(**settings)` and `fake_machine(**machine)`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.deploy_dir = root / "deploy"

    def context(self, settings: dict[str, Any] | None = None, **machine: Any) -> Context:
        machine.setdefault("mounts", [*LOCAL, ("/backups", "nfs4", "nas:/backups")])
        return Context(
            deploy_settings(**(settings or {})),
            fake_machine(self.root / "machine", **machine),
            self.deploy_dir,
        )

    def findings(self, settings: dict[str, Any] | None = None, **machine: Any) -> list[Finding]:
        return run_checks(self.context(settings, **machine))

    def ids(self, settings: dict[str, Any] | None = None, **machine: Any) -> list[str]:
        return [finding.id for finding in self.findings(settings, **machine)]

    def one(self, wanted: str, settings: dict[str, Any] | None = None, **machine: Any) -> Finding:
        found = [finding for finding in self.findings(settings, **machine) if finding.id == wanted]
        assert len(found) == 1, self.ids(settings, **machine)
        return found[0]


@pytest.fixture
def doctor(tmp_path: Path) -> Doctor:
    (tmp_path / "deploy" / "systemd").mkdir(parents=True)
    (tmp_path / "deploy" / "systemd" / "lastro.service").write_text("[Service]\nTimeoutStopSec=45\n")
    return Doctor(tmp_path)
