"""Who may change which ticket (R3.2, R9.1). Enforced by every workflow service."""

from __future__ import annotations

from sqlalchemy import ColumnElement, false, true

from models import Channel, Role, StaffUser, Ticket
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


# --- seeing tickets (R3.2, R9.1; used by the agent console) -------------------------------

# Roles that see every ticket: Açık Kapı staff and its management (not the administrator,
# who manages accounts, not citizens' requests).
SEE_ALL_TICKETS = frozenset(ALL_TICKETS - {Role.ADMINISTRATOR})


def can_view_ticket(actor: StaffUser, ticket: Ticket) -> bool:
    """Whether ``actor`` may see ``ticket``: Açık Kapı staff see every ticket, a department
    liaison only their department's, the mayor's office only its own list (tickets that
    came through the mayor's office), the switchboard and the administrator none."""
    if not actor.is_active:
        return False
    if actor.role in SEE_ALL_TICKETS:
        return True
    if actor.role in OWN_DEPARTMENT:
        return actor.department_id is not None and ticket.department_id == actor.department_id
    if actor.role is Role.MAYORS_OFFICE:
        return ticket.channel is Channel.MAYORS_OFFICE
    return False


def visible_tickets(actor: StaffUser) -> ColumnElement[bool]:
    """SQL condition on :class:`~models.Ticket` selecting what :func:`can_view_ticket`
    allows, for lists and searches."""
    if not actor.is_active:
        return false()
    if actor.role in SEE_ALL_TICKETS:
        return true()
    if actor.role in OWN_DEPARTMENT:
        if actor.department_id is None:
            return false()
        return Ticket.department_id == actor.department_id
    if actor.role is Role.MAYORS_OFFICE:
        return Ticket.channel == Channel.MAYORS_OFFICE
    return false()


def require_can_view(actor: StaffUser, ticket: Ticket) -> None:
    """Raise :class:`NotPermitted` unless :func:`can_view_ticket`."""
    if not can_view_ticket(actor, ticket):
        raise NotPermitted(
            "Bu başvuruyu görme yetkiniz yok.",
            "You are not permitted to see this ticket.",
            role=actor.role.value,
        )


# --- personal data (KVKK; every access is also audited: services.personal_data) ------------

# Who may open a citizen's record and reveal a TC number: the Açık Kapı contact staff and
# its management. Departments see the citizen only through their tickets.
PERSONAL_DATA = frozenset(
    {
        Role.AGENT,
        Role.DESK_STAFF,
        Role.SOCIAL_MEDIA,
        Role.FIELD_TEAM,
        Role.UNIT_CHIEF,
        Role.SUPERVISOR,
        Role.ADVISOR,
    }
)
# Who may listen to call recordings: agents (their calls and the caller's history) and the
# people who review call quality.
RECORDINGS = frozenset({Role.AGENT, Role.UNIT_CHIEF, Role.SUPERVISOR, Role.ADVISOR})


def require_personal_data(actor: StaffUser, roles: frozenset[Role] = PERSONAL_DATA) -> None:
    """Raise :class:`NotPermitted` unless ``actor`` (active) has one of ``roles``."""
    if not actor.is_active or actor.role not in roles:
        raise NotPermitted(
            "Bu kişisel veriye erişim yetkiniz yok.",
            "You are not permitted to access this personal data.",
            role=actor.role.value,
        )
