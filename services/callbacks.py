"""Callback tasks: promises to call a citizen back (R5.3).

Created by the FastAGI ``callback_request`` route (the caller pressed the callback key, or
called out of hours) and by the AMI listener (a caller hung up while queued). The outbound
dialler calls them back agent first through the standing callback campaign
(:mod:`services.callback_campaign`), which takes the pending, due tasks. Services never
read settings: the staffed hours are passed in (see
:func:`services.service_hours.parse_service_hours`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import CallbackReason, CallbackStatus, CallbackTask, Citizen, Language
from services.citizens import citizens_by_phone
from services.errors import InvalidField, MissingField, UnknownEntity
from services.identity import normalise_phone
from services.service_hours import StaffedHours

LOCAL_TZ = ZoneInfo("Europe/Istanbul")


def next_staffed_moment(
    now: datetime, hours: StaffedHours | None, tz: ZoneInfo = LOCAL_TZ
) -> datetime:
    """``now`` when staffed (or 24/7), else the next start of the staffed window (aware)."""
    if hours is None:
        return now
    local = now.astimezone(tz)
    if hours.is_staffed(local.time()):
        return now
    candidate = datetime.combine(local.date(), hours.start, tzinfo=tz)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), hours.start, tzinfo=tz)
    return candidate.astimezone(now.tzinfo)


def _reason(value: CallbackReason | str) -> CallbackReason:
    try:
        return CallbackReason(value)
    except ValueError as exc:
        raise InvalidField(
            f"Geçersiz geri arama nedeni: {value!r}",
            f"Not a valid callback reason: {value!r}",
            field="reason",
        ) from exc


def _language(value: Language | str | None) -> Language:
    if value is None or value == "":
        return Language.TR
    try:
        return Language(value)
    except ValueError as exc:
        raise InvalidField(
            f"Geçersiz dil: {value!r}", f"Not a valid language: {value!r}", field="language"
        ) from exc


def _existing(session: Session, call_id: str, reason: CallbackReason) -> CallbackTask | None:
    return session.scalar(
        select(CallbackTask).where(CallbackTask.call_id == call_id, CallbackTask.reason == reason)
    )


def request_callback(
    session: Session,
    now: datetime,
    *,
    call_id: str,
    raw_phone: str | None,
    reason: CallbackReason | str,
    language: Language | str | None,
    queue: str | None = None,
    citizen_id: int | None = None,
    staffed_hours: StaffedHours | None = None,
) -> CallbackTask:
    """Record that the caller of ``call_id`` must be called back, once per reason.

    Guarantees:
    - idempotent per ``(call_id, reason)``: a repeated request (AGI retry, AMI replay)
      returns the first task unchanged, also when two requests race (the unique
      constraint decides; the loser returns the winner's row);
    - the phone must be usable: a withheld, invalid or unreadable number raises
      :class:`~services.errors.InvalidPhoneNumber` (nobody can be called back), and an
      empty ``call_id``, unknown reason/language or citizen raise typed errors — all
      before anything is written;
    - ``due_at`` is ``now`` when the centre is staffed (always with ``staffed_hours=None``,
      i.e. 24/7), else the next start of the staffed window (Europe/Istanbul);
    - without ``citizen_id``, a phone held by exactly one citizen attaches that citizen;
    - the task is ``PENDING`` with no attempts; flushed (id available), not committed.
    """
    if not call_id or not call_id.strip():
        raise MissingField(
            "Çağrı kimliği yok; geri arama kaydedilemez.",
            "No call id: the callback cannot be recorded.",
            field="call_id",
        )
    call_id = call_id.strip()
    if len(call_id) > 64:
        raise InvalidField("Çağrı kimliği çok uzun.", "The call id is too long.", field="call_id")
    the_reason = _reason(reason)
    the_language = _language(language)
    existing = _existing(session, call_id, the_reason)
    if existing is not None:
        return existing
    phone = normalise_phone(raw_phone or "")
    if citizen_id is not None:
        if session.get(Citizen, citizen_id) is None:
            raise UnknownEntity(
                f"Vatandaş kaydı bulunamadı (#{citizen_id}).", f"No citizen record #{citizen_id}."
            )
    else:
        holders = citizens_by_phone(session, phone.e164)
        citizen_id = holders[0].id if len(holders) == 1 else None
    task = CallbackTask(
        call_id=call_id,
        reason=the_reason,
        status=CallbackStatus.PENDING,
        phone_e164=phone.e164,
        phone_raw=phone.raw[:64],
        citizen_id=citizen_id,
        language=the_language,
        queue=(queue or None) and queue[:80],
        requested_at=now,
        due_at=next_staffed_moment(now, staffed_hours),
        attempts=0,
    )
    try:
        with session.begin_nested():
            session.add(task)
            session.flush()
    except IntegrityError:
        # A concurrent request for the same (call_id, reason) won the race.
        winner = _existing(session, call_id, the_reason)
        if winner is None:
            raise
        return winner
    return task


def pending_callbacks(
    session: Session, limit: int = 100, *, due_before: datetime | None = None
) -> list[CallbackTask]:
    """Pending tasks, the longest-due first (``ix_callback_tasks_status_due``).

    With ``due_before``, only tasks due at or before that moment (what may be dialled now).
    """
    query = select(CallbackTask).where(CallbackTask.status == CallbackStatus.PENDING)
    if due_before is not None:
        query = query.where(CallbackTask.due_at <= due_before)
    return list(session.scalars(query.order_by(CallbackTask.due_at, CallbackTask.id).limit(limit)))
