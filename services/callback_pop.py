"""The citizen card on the agent's screen when a callback's agent leg answers (R5.3, R4.3).

A callback is dialled agent first (:mod:`outbound.callback_dial`): the attempt's channel is
the agent's phone and its Uniqueid is the attempt id. When the agent answers, this module
writes the call record of the callback — call id = attempt id, "caller" = the citizen to be
called, the agent who answered — through the same facts the AMI listener applies to queue
calls (:func:`services.call_records.apply_fact`), and returns the
:class:`~services.call_records.ScreenPop` to publish with the listener's
``ScreenPopPublisher``. The console then opens ``/agent/calls/<attempt id>`` exactly as for a
queue call: greeting, citizen card and history (audited), ticket form.

The callback's ticket (if the task has one) is the call's ticket; otherwise the usual
placeholder ticket of an answered call is opened through intake, as for every answered call.
The record is closed when the attempt's outcome is synced
(:func:`services.callback_campaign.sync_callback_task`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import CallAttempt, CallbackTask, CampaignTarget
from services.call_records import (
    AgentAnswered,
    CallStarted,
    ScreenPop,
    apply_fact,
    open_call_tickets,
)

__all__ = ["callback_agent_answered"]


def callback_agent_answered(
    session: Session, *, now: datetime, attempt_id: str, agent_interface: str
) -> ScreenPop | None:
    """Record that the agent at ``agent_interface`` (``PJSIP/1001``) answered the callback
    attempt ``attempt_id``; return the screen pop carrying the citizen's card.

    Guarantees: one call record per attempt (call id = attempt id), whose caller is the
    task's number, citizen and ticket those of the task; replaying the answer returns
    ``None`` (no second pop) and changes nothing; an attempt that is not a callback returns
    ``None``. Flushed, not committed: publish the pop after the commit.
    """
    row = session.execute(
        select(CallbackTask, CampaignTarget)
        .join(CampaignTarget, CampaignTarget.callback_task_id == CallbackTask.id)
        .join(CallAttempt, CallAttempt.target_id == CampaignTarget.id)
        .where(CallAttempt.id == attempt_id)
    ).first()
    if row is None:
        return None
    task, target = row
    started = apply_fact(
        session,
        now,
        CallStarted(
            call_id=attempt_id,
            at=now,
            caller_raw=task.phone_raw or task.phone_e164,
            channel=agent_interface[:120],
            language=task.language.value,
        ),
    )
    record = started.record
    if record.citizen_id is None:
        record.citizen_id = task.citizen_id or target.citizen_id
    if record.ticket_id is None:
        record.ticket_id = task.ticket_id or target.ticket_id
    if record.note is None:
        record.note = f"callback task {task.id}"
    answered = apply_fact(
        session,
        now,
        AgentAnswered(call_id=attempt_id, at=now, agent_interface=agent_interface),
    )
    due = answered.ticket_due
    if due is None or not due.screen_pop:
        session.flush()
        return None
    done = open_call_tickets(session, now, [due], citizen_cards=True)
    session.flush()
    return done.screen_pops[0] if done.screen_pops else None
