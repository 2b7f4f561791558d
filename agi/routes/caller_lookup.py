"""``caller_lookup``: who is calling? Sets the caller's channel variables for the dialplan.

Reads ``agi_callerid``; sets (always, so the dialplan never sees stale or missing values)
``AK_CALLER_E164``, ``AK_CITIZEN_ID``, ``AK_CITIZEN_NAME``, ``AK_OPEN_TICKETS``,
``AK_PRIORITY``; ``CALLERID(name)`` when the citizen's name is known; ``AK_LANG`` only when
the dialplan has not set it (the IVR language choice wins).

If the database fails or is slow (over ``db_timeout``), the caller is treated as unknown —
the normalised number is still set — and the error is logged: the call goes on to the queue.
"""

from __future__ import annotations

import logging

from agi.protocol import AgiRequest
from models import Language
from services.caller_lookup import CallerInfo, lookup_caller
from services.errors import InvalidPhoneNumber
from services.identity import normalise_phone
from telephony import channel_vars as cv

log = logging.getLogger("acikkapi.agi.caller_lookup")


def mask(number: str | None) -> str:
    """A phone number fit for logs (KVKK: no full numbers in log files)."""
    if not number:
        return "-"
    return number[:6] + "***" + number[-2:] if len(number) > 8 else "***"


async def caller_lookup(request: AgiRequest) -> None:
    ctx = request.context
    raw = request.header("agi_callerid")
    if raw is None and "agi_callerid" in request.headers:
        log.warning(
            "call %s: caller ID with undecodable bytes rejected",
            request.headers.get("agi_uniqueid", "?"),
        )
    preset_language = await request.get_variable(cv.CALLER_LANGUAGE)
    now = ctx.clock()
    try:
        info = await ctx.run_db(
            lambda session: lookup_caller(session, now, raw, ctx.default_language)
        )
    except Exception as exc:  # database down or slow: the call must still reach the queue
        log.error(
            "call %s: caller lookup failed: %r", request.headers.get("agi_uniqueid", "?"), exc
        )
        info = _unknown(raw, ctx.default_language)
    log.info(
        "call %s: caller %s citizen %s open=%d priority=%d%s",
        request.headers.get("agi_uniqueid", "?"),
        mask(info.e164),
        info.citizen_id if info.citizen_id is not None else "-",
        info.open_tickets,
        info.priority,
        " (shared phone)" if info.ambiguous else "",
    )
    await request.set_variable(cv.CALLER_E164, info.e164 or "")
    await request.set_variable(
        cv.CITIZEN_ID, info.citizen_id if info.citizen_id is not None else ""
    )
    await request.set_variable(cv.CITIZEN_NAME, info.display_name or "")
    await request.set_variable(cv.OPEN_TICKETS, info.open_tickets)
    await request.set_variable(cv.PRIORITY, info.priority)
    if info.display_name:
        await request.set_variable("CALLERID(name)", info.display_name)
    if preset_language not in ("tr", "en"):
        await request.set_variable(cv.CALLER_LANGUAGE, info.language.value)


def _unknown(raw: str | None, language: Language) -> CallerInfo:
    """The lookup result without a database: only the number is known."""
    try:
        e164: str | None = normalise_phone(raw or "").e164
    except InvalidPhoneNumber:
        e164 = None
    return CallerInfo(e164, None, None, language, open_tickets=0, priority=0, ambiguous=False)
