from pathlib import Path

from pydantic import model_validator

from services.runtime.settings import Settings


class BackupAgentSettings(Settings):
    # A directory target's root (LIFELINE_BACKUP_DIR); default <LIFELINE_HOME>/backups.
    backup_dir: Path | None = None
    # Where each new snapshot is restored to be checked (LIFELINE_BACKUP_VERIFY_DB_URL): a
    # PostgreSQL server URL, on which a database of its own is created and dropped per check
    # (the database named in the URL is only connected to). Empty: a SQLite file in a temp dir.
    backup_verify_db_url: str = ""
    scratch_dir: Path | None = None  # temp files (LIFELINE_SCRATCH_DIR); default the system's

    @model_validator(mode="after")
    def _dir_under_home(self) -> "BackupAgentSettings":
        if self.backup_dir is None:
            self.backup_dir = self.home / "backups"
        return self
