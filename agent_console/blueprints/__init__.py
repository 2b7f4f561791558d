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
    callbacks,
    campaigns,
    citizen,
    coordination,
    department,
    desk,
    follow_ups,
    mayor_office,
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
    mayor_office.bp,
    campaigns.bp,  # outbound campaigns, do-not-call list, survey results (issue 6)
    callbacks.bp,  # the callback list (issue 6, R5.3)
    follow_ups.bp,  # survey follow-ups: low scores a supervisor follows up (R5.2)
]
