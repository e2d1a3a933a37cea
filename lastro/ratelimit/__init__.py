"""Rate limiting: rates and the sliding-window arithmetic (`window`), the stores that count (`stores`: a
worker's memory; `shared_file`: the workers of one machine; `redis_store`: every machine), the limiter that
falls back when a store is gone (`limiter`), and route policies (`policy`).

Nothing here knows HTTP: `lastro.rate_limits` builds the limiter from the settings and
`lastro.http.rate_limit` applies it to requests.
"""
