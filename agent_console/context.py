"""What the console shares between requests: settings, database sessions, the clock, the PBX
and the screen-pop feed. One :class:`Console` per application, in ``app.extensions``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from flask import current_app
from sqlalchemy.orm import Session, sessionmaker

from acikkapi.settings import Settings

if TYPE_CHECKING:
    from agent_console.ami import ConsoleAmi
    from agent_console.screenpop import ScreenPopHub

EXTENSION = "acikkapi"


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class Console:
    """The console's collaborators. Tests replace ``clock`` (time travel), ``ami`` and
    ``recordings_dir``; everything else comes from the settings."""

    settings: Settings
    sessions: sessionmaker[Session]
    clock: Callable[[], datetime] = system_clock
    ami: Callable[[], ConsoleAmi] | None = None  # None: built from the settings on first use
    screenpops: ScreenPopHub | None = None  # None: built from the settings on first use
    recordings_dir: Callable[[], Path] | None = None  # None: the Asterisk layout's monitor dir
    _layout_dir: Path | None = field(default=None, repr=False)

    def now(self) -> datetime:
        moment = self.clock()
        if moment.tzinfo is None:
            raise ValueError("the console clock must return aware datetimes")
        return moment

    def pbx(self) -> ConsoleAmi:
        """A client for the least-privilege AMI user ``console``."""
        if self.ami is not None:
            return self.ami()
        from agent_console.ami import ConsoleAmi

        return ConsoleAmi.from_settings(self.settings)

    def hub(self) -> ScreenPopHub:
        """The process-wide screen-pop feed (started on first use)."""
        if self.screenpops is None:
            from agent_console.screenpop import ScreenPopHub

            self.screenpops = ScreenPopHub(self.settings.redis_url)
        self.screenpops.start()
        return self.screenpops

    def monitor_dir(self) -> Path:
        """Where Asterisk writes call recordings (telephony.asterisk.Layout.monitor_dir)."""
        if self.recordings_dir is not None:
            return self.recordings_dir()
        if self._layout_dir is None:
            from telephony.asterisk import detect_layout

            self._layout_dir = detect_layout(self.settings).monitor_dir
        return self._layout_dir


def console() -> Console:
    """The :class:`Console` of the current application."""
    found = current_app.extensions[EXTENSION]
    assert isinstance(found, Console)
    return found


def now() -> datetime:
    """The console's notion of now (aware, UTC); tests move it."""
    return console().now()
