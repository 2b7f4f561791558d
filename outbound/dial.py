"""From a claimed attempt to the ``Originate`` that places it (R5.2, R5.5, R5.6).

Every campaign call goes out as ``Local/<digits>@acikkapi-outbound-dial`` (the trunk) with
``ChannelId`` = the attempt id and, once the citizen answers, runs a dialplan extension in
``acikkapi-outbound`` chosen by the campaign kind: ``survey`` (the keypad survey, FastAGI)
or ``message`` (the kind's recorded message: resolution information, delay notice, event
invitation, special groups, data completion). Callback campaigns are agent first: their
request is built by :mod:`outbound.callback_dial` for a free agent (:mod:`outbound.jobs`).
"""

from __future__ import annotations

from models import CampaignKind
from outbound.ami_client import OriginateRequest
from services.dialer import AttemptOrder
from telephony import channel_vars as cv

OUTBOUND_CONTEXT = "acikkapi-outbound"
DIAL_CONTEXT = "acikkapi-outbound-dial"
SURVEY_EXTEN = "survey"
MESSAGE_EXTEN = "message"
RING_TIMEOUT_MS = 40_000  # Originate gives up after this (the Dial itself allows 45 s)

EXTEN_BY_KIND: dict[CampaignKind, str] = {
    CampaignKind.SURVEY: SURVEY_EXTEN,
    CampaignKind.RESOLUTION_INFO: MESSAGE_EXTEN,
    CampaignKind.DELAY_NOTICE: MESSAGE_EXTEN,
    CampaignKind.EVENT_INVITATION: MESSAGE_EXTEN,
    CampaignKind.SPECIAL_GROUP: MESSAGE_EXTEN,
    CampaignKind.DATA_COMPLETION: MESSAGE_EXTEN,
}


def dial_digits(phone_e164: str) -> str:
    """The digits the trunk expects: ``+905321234567`` → ``05321234567`` (national),
    another country ``+49301234`` → ``0049301234``. Raises ``ValueError`` on anything that
    is not ``+`` and digits (nothing else may reach the dialplan)."""
    if not phone_e164.startswith("+") or not phone_e164[1:].isdigit() or len(phone_e164) < 4:
        raise ValueError(f"not an E.164 number: {phone_e164!r}")
    digits = phone_e164[1:]
    if digits.startswith("90"):
        return "0" + digits[2:]
    return "00" + digits


def other_channel_id(attempt_id: str) -> str:
    """The ``Uniqueid`` of the Local channel's dialling half (not itself an attempt id)."""
    return f"{attempt_id}-dial"


def action_id(attempt_id: str) -> str:
    """The Originate's ``ActionID``: ``OriginateResponse`` carries it back to the listener."""
    return f"ak-dial-{attempt_id}"


def order_variables(order: AttemptOrder, *, inherit_attempt: bool) -> dict[str, str]:
    """The channel variables every outbound Originate sets for ``order``: attempt id
    (inherited by the dialled leg, or on the originated channel only), language, kind, and
    the ticket, citizen and callback task when known."""
    attempt_var = f"__{cv.ATTEMPT_ID}" if inherit_attempt else cv.ATTEMPT_ID
    variables = {
        attempt_var: order.attempt_id,
        cv.CALLER_LANGUAGE: str(order.language),
        cv.OUTBOUND_KIND: str(order.kind),
    }
    if order.ticket_id is not None:
        variables[cv.TICKET_ID] = str(order.ticket_id)
    if order.citizen_id is not None:
        variables[cv.CITIZEN_ID_OUT] = str(order.citizen_id)
    if order.callback_task_id is not None:
        variables[cv.OUTBOUND_TASK_ID] = str(order.callback_task_id)
    return variables


def build_request(
    order: AttemptOrder, *, ring_timeout_ms: int = RING_TIMEOUT_MS
) -> OriginateRequest:
    """The ``Originate`` of ``order`` (see the module doc). Raises ``ValueError`` for a kind
    not dialled this way (callbacks: agent first, :mod:`outbound.callback_dial`) or a
    number that is not E.164."""
    exten = EXTEN_BY_KIND.get(order.kind)
    if exten is None:
        raise ValueError(f"no dialplan extension for campaign kind {order.kind}")
    return OriginateRequest(
        channel=f"Local/{dial_digits(order.phone_e164)}@{DIAL_CONTEXT}",
        context=OUTBOUND_CONTEXT,
        exten=exten,
        priority=1,
        channel_id=order.attempt_id,
        other_channel_id=other_channel_id(order.attempt_id),
        variables=order_variables(order, inherit_attempt=True),
        timeout_ms=ring_timeout_ms,
        action_id=action_id(order.attempt_id),
    )
