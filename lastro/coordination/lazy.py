"""`LazyLoader`: something costly, loaded on first use, once, and kept.

```python
model = lastro.LazyLoader.blocking(lambda: SentenceTransformer("all-MiniLM-L6-v2"), name="embeddings")
embeddings = (await model.get()).encode(texts)
```

The first `get()` starts the load; callers that arrive while it runs await that same load rather than
start their own (a model loaded twice at once is twice the memory at the worst moment). The value is kept,
for `ttl` seconds when given, until `reset()`. A failed load is not kept: every caller of that load sees
its error, and the next `get()` tries again. A caller cancelled while waiting leaves the load running for
the others.

Per worker: each process loads its own copy. A loader belongs to the event loop it first loads on; create
it in the lifespan (or at first use), never at import time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import anyio.to_thread

from lastro.errors import one_line_with_type

__all__ = ["LazyLoader"]

T = TypeVar("T")


class LazyLoader(Generic[T]):
    """`await loader.get()`: the value `load()` returned, loading it at most once at a time."""

    def __init__(
        self,
        load: Callable[[], Awaitable[T]],
        *,
        name: str = "value",
        ttl: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl is not None and ttl <= 0:
            raise ValueError(f"a lazy loader's ttl must be positive, not {ttl}")
        self.name = name
        self.ttl = ttl
        self.loads = 0  # loads that succeeded
        self.failures = 0
        self.last_error: str | None = None
        self._load = load
        self._clock = clock
        self._value: T | None = None
        self._loaded_at: float | None = None  # None: nothing kept
        self._loading: asyncio.Task[T] | None = None
        self._generation = 0  # moved by reset(): a load started before it does not keep its value

    @classmethod
    def blocking(
        cls,
        load: Callable[[], T],
        *,
        name: str = "value",
        ttl: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> LazyLoader[T]:
        """A loader for a blocking function (reading a model from disk): it runs on a thread, not the loop."""

        async def in_thread() -> T:
            return await anyio.to_thread.run_sync(load)

        return cls(in_thread, name=name, ttl=ttl, clock=clock)

    @property
    def loaded(self) -> bool:
        """A value is kept and has not expired."""
        return self._loaded_at is not None and not self._expired(self._loaded_at)

    async def get(self) -> T:
        """The kept value, or the result of a load (the one running, or a new one)."""
        if self._loaded_at is not None and not self._expired(self._loaded_at):
            return self._value  # type: ignore[return-value]  # set together with _loaded_at
        if self._loading is None or self._loading.done():
            self._loading = asyncio.ensure_future(self._run(self._generation))
            self._loading.add_done_callback(_retrieve)
        # Shielded: one caller's cancellation must not cancel the load the others are waiting for.
        return await asyncio.shield(self._loading)

    def reset(self) -> None:
        """Forget the value: the next `get()` loads again. A load already running is not kept."""
        self._generation += 1
        self._value = None
        self._loaded_at = None
        self._loading = None

    def statistics(self) -> dict[str, Any]:
        """What `/health` shows of the loader."""
        age = None if self._loaded_at is None else round(self._clock() - self._loaded_at, 3)
        return {
            "loaded": self.loaded,
            "loading": self._loading is not None and not self._loading.done(),
            "age_seconds": age,
            "loads": self.loads,
            "failures": self.failures,
            "last_error": self.last_error,
        }

    async def _run(self, generation: int) -> T:
        try:
            value = await self._load()
        except Exception as exc:
            self.failures += 1
            self.last_error = one_line_with_type(exc)
            raise
        self.loads += 1
        if generation == self._generation:
            self._value = value
            self._loaded_at = self._clock()
        return value

    def _expired(self, loaded_at: float) -> bool:
        return self.ttl is not None and self._clock() - loaded_at >= self.ttl


def _retrieve(load: asyncio.Task[Any]) -> None:
    # A failed load whose every caller was cancelled would otherwise be reported as never retrieved.
    if not load.cancelled():
        load.exception()
