"""One blueprint per area, registered in this order by :func:`agent_console.create_app`.

To add an area: create ``agent_console/blueprints/<area>.py`` with ``bp = Blueprint("<area>",
__name__, url_prefix="/<area>")``, import it here and append it to :data:`BLUEPRINTS`, and add
its endpoints to :data:`agent_console.permissions.MATRIX` (docs/console.md).
"""

from __future__ import annotations

from flask import Blueprint

from agent_console.blueprints import (
    agent,
    audit,
    auth,
    citizen,
    coordination,
    department,
    desk,
    outbox,
    search,
    switchboard,
    tickets,
    wallboard,
)

BLUEPRINTS: list[Blueprint] = [
    auth.bp,
    agent.bp,
    search.bp,
    citizen.bp,
    tickets.bp,
    audit.bp,
    wallboard.bp,
    outbox.bp,
    switchboard.bp,
    coordination.bp,
    department.bp,
    desk.bp,
]
