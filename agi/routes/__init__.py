"""FastAGI routes: one module per route, registered under the name used in the dialplan.

``AGI(agi://127.0.0.1:4573/<name>,arg1,arg2)`` runs ``ROUTES[<name>]``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from agi.protocol import AgiRequest
from agi.routes.callback_request import callback_request
from agi.routes.caller_lookup import caller_lookup
from agi.routes.survey import survey

ROUTES: dict[str, Callable[[AgiRequest], Awaitable[None]]] = {
    "caller_lookup": caller_lookup,
    "callback_request": callback_request,
    "survey": survey,
}
