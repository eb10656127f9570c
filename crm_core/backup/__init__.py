"""Encrypted, database-neutral backups: ``snapshot`` takes one, ``restore`` loads one into an
empty SQLite or PostgreSQL database, ``retention`` keeps the nightly ones. The file layout is
described in ``sealed`` (encryption) and ``stream`` (records)."""

from crm_core.backup.restore import NotEmpty, RestoreReport, check_file, describe_check, restore
from crm_core.backup.sealed import BackupError, DamagedBackup, WrongKey
from crm_core.backup.snapshot import BackupSummary, backup_to_file, write_backup

__all__ = [
    "BackupError",
    "BackupSummary",
    "DamagedBackup",
    "NotEmpty",
    "RestoreReport",
    "WrongKey",
    "backup_to_file",
    "check_file",
    "describe_check",
    "restore",
    "write_backup",
]
