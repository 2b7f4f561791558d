"""Who may change which ticket (R3.2, R9.1). Enforced by every workflow service."""

from __future__ import annotations

from models import Role, StaffUser, Ticket
from services.errors import NotPermitted

# Roles that work on every ticket (coordination, supervision, automated actors).
ALL_TICKETS = frozenset(
    {
        Role.AGENT,
        Role.DESK_STAFF,
        Role.SOCIAL_MEDIA,
        Role.FIELD_TEAM,
        Role.UNIT_CHIEF,
        Role.SUPERVISOR,
        Role.ADVISOR,
        Role.ADMINISTRATOR,
        Role.SYSTEM,
    }
)
# Roles limited to the tickets of their own department.
OWN_DEPARTMENT = frozenset({Role.DEPARTMENT_LIAISON})
# Roles that may forward, re-route, merge and refer (the coordination desk).
COORDINATION = frozenset(
    {Role.AGENT, Role.UNIT_CHIEF, Role.SUPERVISOR, Role.ADVISOR, Role.ADMINISTRATOR, Role.SYSTEM}
)


def require_can_change(actor: StaffUser, ticket: Ticket) -> None:
    """Raise :class:`NotPermitted` unless ``actor`` may change ``ticket``.

    Department liaisons change only their own department's tickets; the mayor's office and
    switchboard operators open tickets but do not work on them.
    """
    if not actor.is_active:
        raise NotPermitted("Hesabınız etkin değil.", "Your account is not active.")
    if actor.role in ALL_TICKETS:
        return
    if (
        actor.role in OWN_DEPARTMENT
        and actor.department_id is not None
        and ticket.department_id == actor.department_id
    ):
        return
    raise NotPermitted(
        "Bu başvuru üzerinde işlem yetkiniz yok.",
        "You are not permitted to change this ticket.",
        role=actor.role.value,
    )


def require_coordination(actor: StaffUser) -> None:
    """Raise :class:`NotPermitted` unless ``actor`` works on the coordination desk."""
    if actor.role not in COORDINATION or not actor.is_active:
        raise NotPermitted(
            "Bu işlem koordinasyon masasına aittir.",
            "This action belongs to the coordination desk.",
            role=actor.role.value,
        )
