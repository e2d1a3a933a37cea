"""Backups that restore: a consistent online copy of the database and stored files, checked and pruned.

```python
result = create_backup(settings)            # BACKUP_DIR/lastro-backup-<UTC stamp>/, or BackupError
verify_backup(result.path)                  # checksums, integrity_check / pg_restore --list
prune(settings.BACKUP_DIR, settings.BACKUP_KEEP, settings.BACKUP_MAX_AGE_DAYS)
restore_backup(result.path, settings, force=True)   # refused while the database is served
```

The commands (`lastro backup`, `lastro backup verify`, `lastro backup list`, `lastro restore`) are thin
over these; `BACKUP_EVERY`/`BACKUP_CRON` schedule the first two as the periodic job `lastro-backup`. This
package is a runtime capability (the service schedules it): it rests on the settings, the errors, the data
layer and the logs, never on HTTP.
"""

from __future__ import annotations

from lastro.backup.make import BackupResult, create_backup
from lastro.backup.manifest import BackupError, Manifest
from lastro.backup.restore import RestoreResult, restore_backup
from lastro.backup.retention import prune
from lastro.backup.store import StoredBackup, list_backups, newest_backup
from lastro.backup.verify import verify_backup

__all__ = [
    "BackupError",
    "BackupResult",
    "Manifest",
    "RestoreResult",
    "StoredBackup",
    "create_backup",
    "list_backups",
    "newest_backup",
    "prune",
    "restore_backup",
    "verify_backup",
]
