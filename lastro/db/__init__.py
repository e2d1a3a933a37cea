"""The data layer: an engine from `DATABASE_URL` and its health, units of work with retry and a circuit
breaker, and schema migrations.

Nothing here knows HTTP: no FastAPI, no request objects, no `lastro.http`.
"""
