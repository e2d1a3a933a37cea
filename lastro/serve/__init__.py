"""The process model: N workers on a maintained ASGI server, the same code path on Linux and Windows.

The server never imports the application's modules: each worker loads `MODULE:APP` by name.
"""

from lastro.serve.runner import ServeConfig, run
from lastro.serve.workers import resolve_workers

__all__ = ["ServeConfig", "resolve_workers", "run"]
