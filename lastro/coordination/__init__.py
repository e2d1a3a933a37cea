"""The shared-state seam: what a service's workers, and its machines, agree on.

One small interface, three backends, chosen from the settings:

- embedded (SQLite, no `REDIS_URL`): leases are rows in the service's SQLite file; the broadcast is the
  `lastro_events` table, which each worker looks at when the file's `PRAGMA data_version` moves;
- PostgreSQL (no `REDIS_URL`): lease rows in the service's database; `LISTEN`/`NOTIFY`, and the
  `lastro_events` table as the replay log;
- Redis (`REDIS_URL`): `SET NX PX` leases; pub/sub, and a capped stream as the replay log.

What rests on it:
- `tables`: lastro's own tables (`lastro_*`), created at start-up beside the application's;
- `leases`: a named lease one holder at a time, expiring unless renewed;
- `events`: `Broadcast`, publish and subscribe across every worker, with replay `since` an event id;
  its transports are `sqlite_events`, `postgres_events` and `redis_events` (over `event_log`, the
  `lastro_events` table, for the first two), and `transports.open_transport` picks one;
- `jobs`: periodic jobs that run once per period across all workers and machines;
- `cache`: caches whose invalidation reaches every worker through the broadcast;
- `batch` and `lazy`: `BatchProcessor` and `LazyLoader`, small helpers with no shared state.
"""
