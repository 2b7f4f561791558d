"""Routing: which unit handles a ticket of a given type (R3.1, R2.6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from models import TicketStatus


class RoutedType(Protocol):
    """What routing reads of a ticket type (a ``TicketType`` row or a value copied from it)."""

    @property
    def department_id(self) -> int | None: ...

    @property
    def external_institution_id(self) -> int | None: ...


@dataclass(frozen=True)
class Route:
    department_id: int | None
    external_institution_id: int | None
    initial_status: TicketStatus

    @property
    def is_external(self) -> bool:
        return self.external_institution_id is not None and self.department_id is None


def route_for(ticket_type: RoutedType) -> Route:
    """The route of a new ticket of ``ticket_type``.

    A type owned by a municipal department starts as ``new`` on the coordination desk with
    that department pre-selected (the desk forwards it, R3.1). A type outside the
    municipality's responsibility goes straight to ``referred_externally`` (R2.6).
    """
    if ticket_type.department_id is None and ticket_type.external_institution_id is not None:
        return Route(None, ticket_type.external_institution_id, TicketStatus.REFERRED_EXTERNALLY)
    return Route(ticket_type.department_id, None, TicketStatus.NEW)
