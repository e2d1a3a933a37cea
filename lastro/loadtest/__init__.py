"""`lastro loadtest`: a capacity report of a running service, measured with Locust.

Steps through user counts against a scenario (a Locust `User` class), each step a warm-up then a measured
window, and reports per step the throughput, the latency percentiles, the error rate and a verdict; then
the largest user count that stayed ok and what more workers would do.

Only the command (`lastro/cli/loadtest.py`) imports this package. Locust, an optional extra
(`lastro[loadtest]`), monkey-patches the standard library with gevent when imported: only `scenario.py`
and `runner.py` import it, and only once the command has checked the target and the plan. The other
modules are plain code the tests run in-process.
"""
