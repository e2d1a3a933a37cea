"""`IdleBackoff`: how long to wait before the next look at something that changes in bursts.

```
backoff = IdleBackoff(base=0.01, cap=0.1)
while running:
    changed = look()
    wait(backoff.after(changed))   # 0.01 s while it changes; 0.02, 0.04, ... up to 0.1 s while it does not
```

Each worker keeps looking at its SQLite file for what other processes wrote (the broadcast's new events,
the WAL's size). Looking often matters only while something happens; an idle service that looked every 10 ms
would spend a percent of a core on nothing. The first change after an idle spell is then seen up to `cap`
seconds late, and from that look on, at `base` again.
"""

from __future__ import annotations

__all__ = ["IdleBackoff"]


class IdleBackoff:
    def __init__(self, base: float, cap: float, factor: float = 2.0) -> None:
        if base < 0 or factor < 1:
            raise ValueError("IdleBackoff needs base >= 0 and factor >= 1")
        self.base = base
        self.cap = max(base, cap)
        self.factor = factor
        self.current = base

    def after(self, changed: bool) -> float:
        """The wait before the next look: `base` after a look that found a change, else the last wait
        grown by `factor`, up to `cap`."""
        self.current = self.base if changed else min(self.cap, self.current * self.factor)
        return self.current
