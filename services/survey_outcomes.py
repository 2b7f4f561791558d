"""What a finished satisfaction survey sets in motion (R5.2, R3.3; decisions 0013, 0021).

:func:`apply_survey_answers` is called once a survey is over — by the FastAGI ``survey``
route in its own short transaction after the last question (also after a hang-up: the
answers given so far count), and by the SMS fallback (services.survey_sms) when the
citizen's digit reply is stored. It reads the answers of one survey (``SurveyAnswer.call_id``:
the attempt id for a campaign call, the call id for an inbound survey, the request key
``survey-sms:…`` for an SMS reply) and:

* **"not solved"** (question ``solved``, answer :data:`NOT_SOLVED_ANSWER`) on a resolved or
  closed ticket → the ticket is **reopened** (services.ticket_workflow.reopen_ticket: new
  SLA cycle, the citizen told) and **escalated one step now**: the first post-breach rung of
  the department's ladder above the level the ticket had reached before reopening (at least
  ``superior_unit`` — the pre-breach reminder is a nudge, not an escalation; at the top of
  the ladder the top rung is told again). The step is recorded like a sweep step (one
  ``escalated`` timeline row with ``step_key esc:<ticket>:<cycle>:<step>``, outbox rows per
  policy: console always, e-mail/SMS as the policy allows, template
  ``survey_not_solved_escalation``), ``escalation_level`` is raised to it and the sweep is
  re-armed from there, so the sweep never takes that step again in this cycle. A ticket
  that is already open (reopened by staff meanwhile) is neither reopened nor escalated; the
  answer is noted on its timeline.
* **low score** (``satisfaction`` ≤ :data:`LOW_SCORE_MAX`) → one **supervisor follow-up**
  (:class:`models.SurveyFollowUp`, kind ``low_score``, open until a supervisor closes it
  with :func:`close_follow_up`), a ``note`` row on the ticket's timeline, and a console
  (and e-mail) notification to every active supervisor (template
  ``survey_low_score_follow_up``). :func:`open_follow_ups` is the supervisors' list.

**Exactly once**, also when answers are replayed or the function runs twice: each outcome
first claims its ``(survey_key, kind)`` row in ``survey_follow_ups`` (unique; a savepoint
decides a race), and only the claimer reopens, escalates or notifies. The first answer to a
question already wins (services.surveys.record_answer). Nothing here commits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import (
    CallAttempt,
    Department,
    Language,
    NotificationChannel,
    Role,
    StaffUser,
    SurveyAnswer,
    SurveyQuestion,
    Ticket,
    TicketStatus,
    TimelineAction,
)
from models.survey_follow_up import SurveyFollowUp
from services import outbox, sla_clock, timeline
from services.actors import system_actor
from services.errors import MissingField, NotPermitted, UnknownEntity
from services.escalation import local_text, recipients_for
from services.sla_policy import Rung, Step, ladder_for
from services.ticket_contacts import live_ticket
from services.ticket_workflow import reopen_ticket

__all__ = [
    "LOW_SCORE_MAX",
    "NOT_SOLVED_ANSWER",
    "SurveyOutcome",
    "apply_survey_answers",
    "attempt_id_for_call",
    "close_follow_up",
    "open_follow_ups",
]

LOW_SCORE_MAX = 2
"""A ``satisfaction`` answer at or below this opens a supervisor follow-up (1–5 scale)."""
NOT_SOLVED_ANSWER = 2
"""The ``solved`` answer meaning "no" ("1 yes / 2 no")."""
SATISFACTION = "satisfaction"
SOLVED = "solved"
LOW_SCORE = "low_score"
NOT_SOLVED = "not_solved"
OPEN = "open"
DONE = "done"
ACTOR_NAME = "survey"
ESCALATION_TEMPLATE = "survey_not_solved_escalation"
FOLLOW_UP_TEMPLATE = "survey_low_score_follow_up"
REOPEN_REASON = "Vatandaş memnuniyet anketinde sorununun çözülmediğini bildirdi."
SUPERVISORS = (Role.SUPERVISOR,)


@dataclass(frozen=True)
class SurveyOutcome:
    """What one call of :func:`apply_survey_answers` found and did."""

    survey_key: str
    ticket_id: int | None = None
    satisfaction: int | None = None
    solved: int | None = None
    reopened: bool = False  # this call reopened the ticket
    escalation_step: str | None = None  # the step this call took (Step value)
    follow_up_id: int | None = None  # the low-score follow-up (created now or before)
    replayed: bool = False  # an outcome was already applied by an earlier call
    notes: tuple[str, ...] = field(default_factory=tuple)  # why something was not done


def attempt_id_for_call(session: Session, call_id: str | None) -> str | None:
    """``call_id`` when it is a campaign call attempt's id (the ``ChannelId`` the dialer
    gave the originated channel, so Asterisk's ``UNIQUEID`` in the survey), else None."""
    if not call_id or len(call_id) > 36:
        return None
    return call_id if session.get(CallAttempt, call_id) is not None else None


def _answers(session: Session, survey_key: str) -> list[tuple[str, SurveyAnswer]]:
    return [
        (code, answer)
        for code, answer in session.execute(
            select(SurveyQuestion.code, SurveyAnswer)
            .join(SurveyQuestion, SurveyQuestion.id == SurveyAnswer.question_id)
            .where(SurveyAnswer.call_id == survey_key)
            .order_by(SurveyAnswer.id)
        )
    ]


def _claim(
    session: Session, values: dict[str, Any]
) -> tuple[SurveyFollowUp | None, SurveyFollowUp | None]:
    """(the new row, None) for the first claim of ``(survey_key, kind)``; (None, the
    existing row) otherwise — also when a concurrent transaction won the insert."""

    def existing() -> SurveyFollowUp | None:
        return session.scalar(
            select(SurveyFollowUp).where(
                SurveyFollowUp.survey_key == values["survey_key"],
                SurveyFollowUp.kind == values["kind"],
            )
        )

    found = existing()
    if found is not None:
        return None, found
    row = SurveyFollowUp(**values)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        winner = existing()
        if winner is None:
            raise
        return None, winner
    return row, None


def apply_survey_answers(
    session: Session, *, now: datetime, survey_key: str, ticket_id: int | None = None
) -> SurveyOutcome:
    """Act on the answers of the survey ``survey_key`` (see the module docstring; R5.2).

    Guarantees: reads the stored answers only (nothing to do when there are none); the
    ticket is ``ticket_id`` or the one the answers name, followed through merges; "not
    solved" reopens and escalates a resolved or closed ticket exactly once, a low score
    creates exactly one supervisor follow-up with its notifications — whatever the number
    of calls, replays or concurrent runs (``replayed`` tells an earlier call did it);
    everything is written in the caller's transaction, never committed.
    """
    if not survey_key or not survey_key.strip():
        raise MissingField(
            "Anket kimliği yok.", "No survey key: nothing to apply.", field="survey_key"
        )
    survey_key = survey_key.strip()[:64]
    answers = _answers(session, survey_key)
    if not answers:
        return SurveyOutcome(survey_key, ticket_id, notes=("no_answers",))
    by_code = {code: answer for code, answer in answers}
    if ticket_id is None:
        ticket_id = next((a.ticket_id for _, a in answers if a.ticket_id is not None), None)
    ticket = session.get(Ticket, ticket_id) if ticket_id is not None else None
    if ticket is not None:
        ticket = live_ticket(session, ticket)
    satisfaction = by_code[SATISFACTION].answer if SATISFACTION in by_code else None
    solved = by_code[SOLVED].answer if SOLVED in by_code else None
    channel = answers[0][1].channel or "ivr"
    citizen_id = next((a.citizen_id for _, a in answers if a.citizen_id is not None), None)
    result: dict[str, Any] = {
        "survey_key": survey_key,
        "ticket_id": ticket.id if ticket is not None else ticket_id,
        "satisfaction": satisfaction,
        "solved": solved,
    }
    notes: list[str] = []
    replayed = False
    base = {
        "survey_key": survey_key,
        "ticket_id": ticket.id if ticket is not None else None,
        "citizen_id": ticket.citizen_id if ticket is not None and ticket.citizen_id else citizen_id,
        "department_id": ticket.department_id if ticket is not None else None,
        "neighbourhood_id": ticket.neighbourhood_id if ticket is not None else None,
        "channel": channel,
        "created_at": now,
    }
    if solved == NOT_SOLVED_ANSWER:
        row, earlier = _claim(session, {**base, "kind": NOT_SOLVED, "status": DONE})
        if row is None:
            replayed = True
        elif ticket is None:
            notes.append("not_solved_without_ticket")
        else:
            reopened, step, why = _reopen_and_escalate(session, now, ticket, survey_key)
            row.reopened = reopened
            row.escalation_step = step
            result["reopened"] = reopened
            result["escalation_step"] = step
            notes.extend(why)
    if satisfaction is not None and satisfaction <= LOW_SCORE_MAX:
        row, earlier = _claim(
            session, {**base, "kind": LOW_SCORE, "status": OPEN, "score": satisfaction}
        )
        if row is None:
            replayed = True
            result["follow_up_id"] = earlier.id if earlier is not None else None
        else:
            _announce_follow_up(session, now, row, ticket)
            result["follow_up_id"] = row.id
    session.flush()
    return SurveyOutcome(**result, replayed=replayed, notes=tuple(notes))


def _reopen_and_escalate(
    session: Session, now: datetime, ticket: Ticket, survey_key: str
) -> tuple[bool, str | None, list[str]]:
    actor = system_actor(session, ACTOR_NAME, now)
    if ticket.status not in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
        timeline.record(
            session,
            ticket,
            actor,
            now,
            TimelineAction.NOTE,
            note="Memnuniyet anketi: vatandaş sorununun çözülmediğini bildirdi "
            "(başvuru zaten açık; yeniden açılmadı).",
            survey_key=survey_key,
            survey_outcome=NOT_SOLVED,
        )
        return False, None, ["ticket_not_resolved"]
    prior_level = ticket.escalation_level
    reopen_ticket(session, actor, now, ticket, REOPEN_REASON)
    step = _escalate_now(session, now, actor, ticket, prior_level, survey_key)
    return True, step, ([] if step is not None else ["no_escalation_ladder"])


def _rung_after(rungs: tuple[Rung, ...], prior_level: int) -> Rung | None:
    """The first post-breach rung above ``prior_level`` (at least the superior unit); the
    top rung when the ticket had already reached it; None for an empty ladder."""
    floor = max(prior_level, Step.REMINDER.level)
    for rung in rungs:
        if rung.step.level > floor:
            return rung
    return rungs[-1] if rungs else None


def _escalate_now(
    session: Session,
    now: datetime,
    actor: StaffUser,
    ticket: Ticket,
    prior_level: int,
    survey_key: str,
) -> str | None:
    """Take one escalation step of the (just reopened) ticket now; see the module docs."""
    if ticket.department_id is None:
        return None
    department = session.get(Department, ticket.department_id)
    if department is None:
        return None
    ladder = ladder_for(session, department)
    rung = _rung_after(ladder.rungs, prior_level)
    if rung is None:
        return None
    unit = session.get(Department, rung.unit_id) or department
    step = rung.step
    key = f"esc:{ticket.id}:{ticket.sla_cycle}:{step.value}"
    ticket_type = ticket.ticket_type
    payload: dict[str, Any] = {
        "reference_code": ticket.reference_code,
        "ticket_type": ticket_type.name_tr if ticket_type else "",
        "ticket_type_en": ticket_type.name_en if ticket_type else "",
        "department": department.name_tr,
        "department_en": department.name_en,
        "unit": unit.name_tr,
        "unit_en": unit.name_en,
        "step": step.value,
        "level": step.level,
        "due_at": ticket.due_at.isoformat(),
        "due_at_local": local_text(ticket.due_at),
        "legal_due_at_local": local_text(ticket.legal_due_at),
    }
    policy = ladder.policy
    recipients = recipients_for(session, step, unit)
    queued: list[str] = []
    for person in recipients:
        sends: list[tuple[NotificationChannel, str]] = []
        if person.staff_id is not None:
            sends.append((NotificationChannel.CONSOLE, str(person.staff_id)))
        if policy.notify_email and person.email:
            sends.append((NotificationChannel.EMAIL, person.email))
        if policy.notify_sms and person.phone:
            sends.append((NotificationChannel.SMS, person.phone))
        for channel, recipient in sends:
            row_key = f"{key}:{person.key}:{channel.value}"
            outbox.enqueue(
                session,
                now,
                key=row_key,
                channel=channel,
                recipient=recipient,
                template=ESCALATION_TEMPLATE,
                language=person.language,
                payload=payload,
                ticket=ticket,
            )
            queued.append(row_key)
    note = f"Memnuniyet anketinde çözülmedi denildi; {unit.name_tr} bilgisine sunuldu."
    if not queued:
        note += " Bildirilecek kimse bulunamadı."
    timeline.record(
        session,
        ticket,
        actor,
        now,
        TimelineAction.ESCALATED,
        note=note,
        step_key=key,
        step=step.value,
        level=step.level,
        unit=unit.name_tr,
        unit_id=unit.id,
        policy=policy.code,
        recipients=[p.key for p in recipients],
        notifications=queued,
        reason="survey_not_solved",
        survey_key=survey_key,
        due_at=payload["due_at"],
    )
    ticket.escalation_level = step.level
    sla_clock.rearm(session, ticket)
    return step.value


def _supervisors(session: Session) -> list[StaffUser]:
    return list(
        session.scalars(
            select(StaffUser)
            .where(StaffUser.role.in_(SUPERVISORS), StaffUser.is_active.is_(True))
            .order_by(StaffUser.id)
        )
    )


def _announce_follow_up(
    session: Session, now: datetime, row: SurveyFollowUp, ticket: Ticket | None
) -> None:
    """The low-score follow-up's timeline note and its supervisor notifications."""
    department = session.get(Department, row.department_id) if row.department_id else None
    payload: dict[str, Any] = {
        "reference_code": ticket.reference_code if ticket is not None else "-",
        "ticket_type": ticket.ticket_type.name_tr if ticket is not None else "-",
        "ticket_type_en": ticket.ticket_type.name_en if ticket is not None else "-",
        "department": department.name_tr if department else "-",
        "department_en": department.name_en if department else "-",
        "score": row.score,
        "channel": row.channel,
        "follow_up_id": row.id,
    }
    queued: list[str] = []
    for person in _supervisors(session):
        language = Language.TR if "tr" in (person.languages or ["tr"]) else Language.EN
        sends = [(NotificationChannel.CONSOLE, str(person.id))]
        if person.email:
            sends.append((NotificationChannel.EMAIL, person.email))
        for channel, recipient in sends:
            key = f"survey-followup:{row.id}:staff{person.id}:{channel.value}"
            outbox.enqueue(
                session,
                now,
                key=key,
                channel=channel,
                recipient=recipient,
                template=FOLLOW_UP_TEMPLATE,
                language=language,
                payload=payload,
                ticket=ticket,
                key_is_new=True,
            )
            queued.append(key)
    if ticket is not None:
        timeline.record(
            session,
            ticket,
            system_actor(session, ACTOR_NAME, now),
            now,
            TimelineAction.NOTE,
            note=f"Memnuniyet anketinde düşük puan ({row.score}/5): süpervizör takibi açıldı.",
            survey_key=row.survey_key,
            survey_outcome=LOW_SCORE,
            follow_up_id=row.id,
            notifications=queued,
        )


def open_follow_ups(
    session: Session, *, department_id: int | None = None, limit: int = 100
) -> list[SurveyFollowUp]:
    """The supervisors' list: open low-score follow-ups, oldest first (optionally of one
    department). Reads only."""
    query = select(SurveyFollowUp).where(
        SurveyFollowUp.kind == LOW_SCORE, SurveyFollowUp.status == OPEN
    )
    if department_id is not None:
        query = query.where(SurveyFollowUp.department_id == department_id)
    return list(
        session.scalars(query.order_by(SurveyFollowUp.created_at, SurveyFollowUp.id).limit(limit))
    )


def close_follow_up(
    session: Session, *, now: datetime, actor: StaffUser, follow_up_id: int, note: str
) -> SurveyFollowUp:
    """Close a low-score follow-up with what the supervisor did (R5.2).

    Guarantees: only supervisors, advisors and administrators (``NotPermitted``); a note is
    required (``MissingField``); closing a closed follow-up returns it unchanged (first
    close wins); the ticket's timeline records the close. Never commits.
    """
    if actor.role not in (Role.SUPERVISOR, Role.ADVISOR, Role.ADMINISTRATOR) or not (
        actor.is_active
    ):
        raise NotPermitted(
            "Anket takiplerini yalnızca süpervizörler kapatabilir.",
            "Only supervisors may close survey follow-ups.",
        )
    if not note.strip():
        raise MissingField("Takip notu gerekli.", "A follow-up note is required.", field="note")
    row = session.get(SurveyFollowUp, follow_up_id)
    if row is None or row.kind != LOW_SCORE:
        raise UnknownEntity(
            f"Anket takibi bulunamadı: #{follow_up_id}", f"No survey follow-up #{follow_up_id}."
        )
    if row.status == DONE:
        return row
    row.status = DONE
    row.closed_at = now
    row.closed_by_id = actor.id
    row.note = note.strip()[:500]
    ticket = session.get(Ticket, row.ticket_id) if row.ticket_id is not None else None
    if ticket is not None:
        timeline.record(
            session,
            ticket,
            actor,
            now,
            TimelineAction.NOTE,
            note=f"Anket takibi kapatıldı: {row.note}",
            follow_up_id=row.id,
            survey_outcome=LOW_SCORE,
        )
    session.flush()
    return row
