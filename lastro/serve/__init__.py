"""The process model: N workers on a maintained ASGI server, the same code path on Linux and Windows.

The server never imports the application's modules: each worker loads `MODULE:APP` by name.
"""

from lastro.serve.runner import ServeConfig, run

__all__ = ["ServeConfig", "run"]
