"""The data layer: an engine from `DATABASE_URL`, its health, and (later) units of work and retries.

Nothing here knows HTTP: no FastAPI, no request objects, no `lastro.http`.
"""
