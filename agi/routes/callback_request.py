"""``callback_request``: record a promise to call the caller back; sets ``AK_CALLBACK_ID``.

``AGI(agi://127.0.0.1:4573/callback_request,<reason>[,<queue>])`` with reason ``abandoned``,
``out_of_hours`` or ``ivr_request``. The call is identified by ``CALL_ID`` (falling back to
``agi_uniqueid``), the number by ``AK_CALLER_E164`` (set by ``caller_lookup``), else
``agi_callerid``. ``AK_CALLBACK_ID`` is the task id, or empty when no callback could be
recorded (withheld number, bad reason, database down) — the dialplan plays the matching
prompt; this route plays nothing. Repeating the request for the same call and reason returns
the same task (idempotent).
"""

from __future__ import annotations

import logging

from agi.protocol import AgiRequest
from services.callbacks import request_callback
from services.errors import DomainError
from telephony import channel_vars as cv

log = logging.getLogger("acikkapi.agi.callback_request")


async def callback_request(request: AgiRequest) -> None:
    ctx = request.context
    reason = request.argument(1) or ""
    queue = request.argument(2)
    call_id = await request.get_variable(cv.CALL_ID) or request.header("agi_uniqueid") or ""
    phone = await request.get_variable(cv.CALLER_E164) or request.header("agi_callerid")
    language = await request.get_variable(cv.CALLER_LANGUAGE) or ctx.default_language.value
    citizen = await request.get_variable(cv.CITIZEN_ID)
    citizen_id = int(citizen) if citizen and citizen.isascii() and citizen.isdigit() else None
    now = ctx.clock()
    task_id = ""
    try:
        task = await ctx.run_db(
            lambda session: request_callback(
                session,
                now,
                call_id=call_id,
                raw_phone=phone,
                reason=reason,
                language=language if language in ("tr", "en") else ctx.default_language,
                queue=queue,
                citizen_id=citizen_id,
                staffed_hours=ctx.staffed_hours,
            )
        )
        task_id = str(task.id)
        log.info("call %s: callback task %s (%s) due %s", call_id, task.id, reason, task.due_at)
    except DomainError as exc:
        log.warning("call %s: no callback (%s): %s", call_id, exc.code, exc.message_en)
    except Exception as exc:
        log.error("call %s: callback request failed: %r", call_id, exc)
    await request.set_variable(cv.CALLBACK_ID, task_id)
