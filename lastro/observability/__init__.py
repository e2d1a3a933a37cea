"""What a running service tells its operator: structured log lines, the requests in flight, throttled
fault lines, and the watchdog that reports and ends a worker whose event loop is held."""
