"""`lastro doctor`: the settings and the machine, checked before a deploy, in the spirit of Django's
`check --deploy`.

Each check is a function of a `Context` (the settings, the `Machine`'s facts, the deploy files) that
returns findings; `run_checks` runs them all. The machine's facts are read through `Machine`, so a test
hands in its own. Only the command imports this package: nothing in the service does.
"""

from __future__ import annotations

from lastro.ops.doctor.context import Context
from lastro.ops.doctor.findings import Finding, exit_code, to_document
from lastro.ops.doctor.machine import Machine
from lastro.ops.doctor.report import CHECKS, render, run_checks

__all__ = ["CHECKS", "Context", "Finding", "Machine", "exit_code", "render", "run_checks", "to_document"]
