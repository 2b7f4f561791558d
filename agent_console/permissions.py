"""THE permission matrix of the console: which roles (R9.1) may call which endpoint.

Every endpoint of the application must appear in :data:`MATRIX`; one that does not is
refused to everybody (403) and fails ``tests/console/test_permission_matrix.py``. The check
runs on the server before every request (:func:`enforce`); templates only hide links with
:func:`can`. Object-level rules (a department sees only its own tickets) are in
:mod:`services.permissions` and applied by the views.

Adding a screen: add its endpoints here, in its own section, with the smallest set of roles
that need it (docs/console.md).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from flask import jsonify, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from werkzeug.exceptions import Forbidden

from models import Role
from services import dead_letters, survey_follow_up_list
from services import permissions as domain


class Open(enum.Enum):
    """Endpoints anyone may reach, signed in or not (the sign-in page, assets)."""

    PUBLIC = "public"


PUBLIC = Open.PUBLIC
Access = frozenset[Role] | Open

# --- role groups (named after what they do, not who they are) -----------------------------
STAFF = frozenset(Role) - {Role.SYSTEM}  # every human role: may sign in
CALL_TAKERS = frozenset({Role.AGENT, Role.UNIT_CHIEF})  # take calls from the queues
PERSONAL_DATA = domain.PERSONAL_DATA  # open citizen records, reveal TC numbers
RECORDINGS = domain.RECORDINGS  # listen to call recordings
TICKET_READERS = domain.SEE_ALL_TICKETS | {Role.DEPARTMENT_LIAISON, Role.MAYORS_OFFICE}
SEARCHERS = PERSONAL_DATA | TICKET_READERS  # liaisons/mayor's office find tickets only
AUDITORS = frozenset({Role.SUPERVISOR, Role.ADVISOR})  # read the KVKK access log
WALLBOARD = frozenset({Role.SUPERVISOR, Role.ADVISOR, Role.UNIT_CHIEF})  # watch queues, SLA
OUTBOX_KEEPERS = dead_letters.OUTBOX_KEEPERS  # requeue notifications that were not sent
# switchboard, coordination desk, department inbox, walk-in desk (issue 4 items 3-6)
SWITCHBOARD_WATCHERS = frozenset({Role.SWITCHBOARD_OPERATOR, Role.SUPERVISOR})  # live calls
SWITCHBOARD_OPERATORS = frozenset({Role.SWITCHBOARD_OPERATOR})  # transfer, note a call
COORDINATORS = (domain.COORDINATION & domain.SEE_ALL_TICKETS) - {Role.SYSTEM}  # route tickets
DEPARTMENT_INBOX = frozenset({Role.DEPARTMENT_LIAISON, Role.UNIT_CHIEF, Role.SUPERVISOR})
DESK = frozenset({Role.DESK_STAFF, Role.UNIT_CHIEF, Role.SUPERVISOR})  # walk-in applications
MAYOR_LIST = frozenset({Role.MAYORS_OFFICE, Role.SUPERVISOR})  # the mayor's weekly list (R5.4)
MAYOR_LIST_DRAWERS = frozenset({Role.SUPERVISOR})  # draw the week's list by hand
CALLBACK_KEEPERS = CALL_TAKERS | {Role.SUPERVISOR}  # the callback list (R5.3)
# outbound campaigns and survey results (issue 6: R5.1-R5.6, R8.2)
CAMPAIGN_MANAGERS = frozenset({Role.SUPERVISOR, Role.ADMINISTRATOR})  # schedule, start, stop
SURVEY_READERS = CAMPAIGN_MANAGERS | {Role.ADVISOR, Role.MAYORS_OFFICE}  # survey results
FOLLOW_UP_READERS = survey_follow_up_list.FOLLOW_UP_READERS  # low-score follow-ups (R5.2)
FOLLOW_UP_CLOSERS = survey_follow_up_list.FOLLOW_UP_CLOSERS  # close one with a note

MATRIX: Mapping[str, Access] = {
    # assets
    "static": PUBLIC,
    # auth: sign-in, sign-out, language, start page
    "auth.login": PUBLIC,
    "auth.language": PUBLIC,
    "auth.logout": STAFF,
    "auth.keepalive": STAFF,
    "auth.home": STAFF,
    # agent: the call-taker's screen (queue state, screen pop, ticket from the call)
    "agent.screen": CALL_TAKERS,
    "agent.state": CALL_TAKERS,
    "agent.events": CALL_TAKERS,
    "agent.call": CALL_TAKERS,
    "agent.queue_login": CALL_TAKERS,
    "agent.queue_logout": CALL_TAKERS,
    "agent.pause": CALL_TAKERS,
    "agent.ready": CALL_TAKERS,
    "agent.wrapup": CALL_TAKERS,
    "agent.call_ticket": CALL_TAKERS,
    "agent.transfer": CALL_TAKERS,
    # search: phone, TC number, reference code, name
    "search.index": SEARCHERS,
    # citizen: the 360° record, TC reveal, recordings (all audited)
    "citizen.show": PERSONAL_DATA,
    "citizen.reveal_tc_number": PERSONAL_DATA,
    "citizen.recording_grant": RECORDINGS,
    "citizen.recording": RECORDINGS,
    # tickets
    "tickets.show": TICKET_READERS,
    # audit: the KVKK access log
    "audit.index": AUDITORS,
    # wallboard: queues, agents, shifts and tickets past SLA (the board refreshes passively)
    "wallboard.index": WALLBOARD,
    "wallboard.board": WALLBOARD,
    # outbox: notifications that could not be sent (dead letters) and their requeue
    "outbox.dead": OUTBOX_KEEPERS,
    "outbox.requeue_one": OUTBOX_KEEPERS,
    # switchboard: live calls, transfer with a note that travels with the call (polled)
    "switchboard.index": SWITCHBOARD_WATCHERS,
    "switchboard.calls": SWITCHBOARD_WATCHERS,
    "switchboard.note": SWITCHBOARD_OPERATORS,
    "switchboard.transfer": SWITCHBOARD_OPERATORS,
    # coordination: every incoming ticket; forward, re-route, refer, merge, split, more time
    "coordination.index": COORDINATORS,
    "coordination.ticket": COORDINATORS,
    "coordination.forward": COORDINATORS,
    "coordination.reclassify": COORDINATORS,
    "coordination.refer": COORDINATORS,
    "coordination.split": COORDINATORS,
    "coordination.extend": COORDINATORS,
    "coordination.merge_preview_page": COORDINATORS,
    "coordination.merge": COORDINATORS,
    # department: a unit's own tickets (object rules: services.permissions)
    "department.index": DEPARTMENT_INBOX,
    "department.ticket": DEPARTMENT_INBOX,
    "department.accept": DEPARTMENT_INBOX,
    "department.status": DEPARTMENT_INBOX,
    "department.note": DEPARTMENT_INBOX,
    "department.photos": DEPARTMENT_INBOX,
    "department.resolve": DEPARTMENT_INBOX,
    "department.extend": DEPARTMENT_INBOX,
    "department.photo": TICKET_READERS,  # a ticket's photo, for whoever may see the ticket
    # desk: the walk-in application form with camera photos, and its receipt
    "desk.index": DESK,
    "desk.submit": DESK,
    "desk.receipt": DESK,
    # mayor_office: the mayor's weekly call list, call results, PDF, completion report (R5.4)
    "mayor_office.index": MAYOR_LIST,
    "mayor_office.pdf": MAYOR_LIST,
    "mayor_office.record": MAYOR_LIST,
    "mayor_office.report": MAYOR_LIST,
    "mayor_office.draw": MAYOR_LIST_DRAWERS,
    # callbacks: the callback list, "call now" and "close" (R5.3)
    "callbacks.index": CALLBACK_KEEPERS,
    "callbacks.call_now_view": CALLBACK_KEEPERS,
    "callbacks.close": CALLBACK_KEEPERS,
    # campaigns: outbound calling (live progress polled), do-not-call list, survey results
    "campaigns.index": CAMPAIGN_MANAGERS,
    "campaigns.progress": CAMPAIGN_MANAGERS,
    "campaigns.new": CAMPAIGN_MANAGERS,
    "campaigns.show": CAMPAIGN_MANAGERS,
    "campaigns.start": CAMPAIGN_MANAGERS,
    "campaigns.pause": CAMPAIGN_MANAGERS,
    "campaigns.stop": CAMPAIGN_MANAGERS,
    "campaigns.do_not_call": CAMPAIGN_MANAGERS,
    "campaigns.do_not_call_add": CAMPAIGN_MANAGERS,
    "campaigns.do_not_call_remove": CAMPAIGN_MANAGERS,
    "campaigns.survey_results": SURVEY_READERS,
    # follow_ups: low survey scores a supervisor follows up (liaisons: own department)
    "follow_ups.index": FOLLOW_UP_READERS,
    "follow_ups.close": FOLLOW_UP_CLOSERS,
}


class RoleNotPermitted(Forbidden):
    """The matrix refused the request (JSON error code ``role_not_permitted``), as opposed to
    an object-level refusal of a domain service (``not_permitted``)."""

    error_code = "role_not_permitted"


def access(endpoint: str | None) -> Access | None:
    """The rule for ``endpoint``; ``None`` when it is not in the matrix (refused)."""
    return MATRIX.get(endpoint or "")


def allowed(endpoint: str, role: Role | None) -> bool:
    """Whether ``role`` (``None``: not signed in) may call ``endpoint``."""
    rule = access(endpoint)
    if rule is None:
        return False
    if rule is PUBLIC:
        return True
    return role is not None and isinstance(rule, frozenset) and role in rule


def can(endpoint: str) -> bool:
    """For templates: may the signed-in user call ``endpoint``?"""
    role = current_user.staff.role if current_user.is_authenticated else None
    return allowed(endpoint, role)


def wants_json() -> bool:
    """Whether the client is a script (fetch, EventSource) rather than a page load."""
    if "text/event-stream" in request.headers.get("Accept", ""):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" or request.headers.get("X-Requested-With") == "fetch"


def enforce() -> ResponseReturnValue | None:
    """``before_request``: refuse what the matrix does not allow (deny by default)."""
    endpoint = request.endpoint
    if endpoint is None:  # no route: let Flask answer 404 / 405
        return None
    rule = access(endpoint)
    if rule is None:
        raise RoleNotPermitted()
    if rule is PUBLIC:
        return None
    if not current_user.is_authenticated:
        if wants_json() or request.method != "GET":
            response = jsonify(error="sign_in_required", code="sign_in_required")
            response.status_code = 401
            return response
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    if not allowed(endpoint, current_user.staff.role):
        raise RoleNotPermitted()
    return None
