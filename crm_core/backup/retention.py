"""Nightly backups in a folder: named by their UTC time, the oldest removed past a count."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from crm_core.backup.snapshot import BackupSummary, backup_to_file
from crm_core.clock import utcnow
from crm_core.i18n import _

_NAME = re.compile(r"^chatcrm-\d{8}T\d{6}Z\.backup$")


def backup_name(when: datetime) -> str:
    """``chatcrm-20261024T023000Z.backup``: names sort in time order."""
    return when.strftime("chatcrm-%Y%m%dT%H%M%SZ.backup")


def backups_in(directory: Path) -> list[Path]:
    """The backups this module wrote into ``directory``, oldest first (other files are left alone)."""
    return sorted(path for path in directory.iterdir() if _NAME.match(path.name) and path.is_file())


@dataclass(frozen=True)
class NightlyResult:
    summary: BackupSummary
    removed: list[Path]

    def describe(self) -> str:
        if not self.removed:
            return self.summary.describe()
        return _("{summary}; removed {count} older", summary=self.summary.describe(), count=len(self.removed))


def take_backup(engine: Engine, directory: str | Path, keep: int, secret: bytes) -> NightlyResult:
    """A new backup into ``directory``; only once it is complete are the oldest beyond ``keep``
    removed, so a failed night never costs an older backup."""
    directory = Path(directory)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    summary = backup_to_file(engine, directory / backup_name(utcnow()), secret)
    kept = backups_in(directory)
    removed = kept[: max(0, len(kept) - keep)]
    for path in removed:
        path.unlink(missing_ok=True)
    return NightlyResult(summary, removed)
