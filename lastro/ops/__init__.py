"""What runs a lastro service from outside it: the files `lastro deploy` writes for other tools, and the
checks of `lastro doctor` (`lastro.ops.doctor`).

Nothing in the service imports this package; only the command (`lastro/cli/`) does. Templates are data
files under `templates/`, read with `importlib.resources`.
"""
