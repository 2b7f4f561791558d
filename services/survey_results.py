"""Satisfaction survey results: per department, neighbourhood, ticket, period (R5.2, R8.2).

Reads :class:`~models.SurveyAnswer` rows (question codes ``satisfaction`` 1–5, ``solved``
1 yes / 2 no, ``courtesy`` 1–5; see :mod:`services.surveys`) joined to the surveyed ticket,
and folds them into :class:`SurveyFigures`: how many surveys (distinct calls), the mean
satisfaction and courtesy scores, and the share of citizens who said their problem was
solved. Every report is one ``GROUP BY`` over a subquery (the grouping key is computed
inside it, so the same SQL works on SQLite and PostgreSQL, including time buckets built
with ``CASE`` over boundaries computed here in Europe/Istanbul local time). Read-only:
nothing is written, nothing committed.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, case, distinct, func, literal, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from models import CallAttempt, Department, Neighbourhood, SurveyAnswer, SurveyQuestion, Ticket
from services.errors import InvalidField

__all__ = [
    "COURTESY",
    "SATISFACTION",
    "SOLVED",
    "BeforeAfter",
    "Period",
    "SurveyFigures",
    "SurveyFilter",
    "before_after",
    "overall",
    "results_by_department",
    "results_by_neighbourhood",
    "results_by_ticket",
    "results_over_time",
]

SATISFACTION = "satisfaction"
SOLVED = "solved"
COURTESY = "courtesy"
CODES = (SATISFACTION, SOLVED, COURTESY)
SOLVED_YES = 1
LOCAL_TZ = ZoneInfo("Europe/Istanbul")
MAX_BUCKETS = 200  # weeks or months in one over-time report


class Period(enum.StrEnum):
    WEEK = "week"
    MONTH = "month"


@dataclass(frozen=True)
class SurveyFilter:
    """Which answers count: ``start <= answered_at < end`` (aware datetimes, either may be
    open), only those asked by one campaign's calls, only one department's or one
    neighbourhood's tickets."""

    start: datetime | None = None
    end: datetime | None = None
    campaign_id: int | None = None
    department_id: int | None = None
    neighbourhood_id: int | None = None


@dataclass(frozen=True)
class SurveyFigures:
    """The results of one group (a department, a neighbourhood, a ticket, a week...).

    ``key`` is the group's id (department, neighbourhood or ticket id, ``None`` for answers
    without one) or the first local day of a time bucket; ``label_tr`` / ``label_en`` name it.
    Means are ``None`` when nobody answered that question.
    """

    key: int | date | str | None
    label_tr: str = ""
    label_en: str = ""
    surveys: int = 0  # distinct calls that answered at least one question
    satisfaction_count: int = 0
    satisfaction_sum: int = 0
    courtesy_count: int = 0
    courtesy_sum: int = 0
    solved_count: int = 0
    solved_yes: int = 0

    @property
    def satisfaction_mean(self) -> float | None:
        return self.satisfaction_sum / self.satisfaction_count if self.satisfaction_count else None

    @property
    def courtesy_mean(self) -> float | None:
        return self.courtesy_sum / self.courtesy_count if self.courtesy_count else None

    @property
    def solved_share(self) -> float | None:
        """Share (0..1) of "solved?" answers that said yes."""
        return self.solved_yes / self.solved_count if self.solved_count else None

    def label(self, language: str = "tr") -> str:
        return self.label_en if language == "en" and self.label_en else self.label_tr


@dataclass
class _Acc:
    surveys: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    sums: dict[str, int] = field(default_factory=dict)
    yes: int = 0

    def figures(self, key: Any, label_tr: str, label_en: str) -> SurveyFigures:
        return SurveyFigures(
            key=key,
            label_tr=label_tr,
            label_en=label_en,
            surveys=self.surveys,
            satisfaction_count=self.counts.get(SATISFACTION, 0),
            satisfaction_sum=self.sums.get(SATISFACTION, 0),
            courtesy_count=self.counts.get(COURTESY, 0),
            courtesy_sum=self.sums.get(COURTESY, 0),
            solved_count=self.counts.get(SOLVED, 0),
            solved_yes=self.yes,
        )


def _conditions(filters: SurveyFilter) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = [SurveyQuestion.code.in_(CODES)]
    if filters.start is not None:
        conds.append(SurveyAnswer.answered_at >= filters.start)
    if filters.end is not None:
        conds.append(SurveyAnswer.answered_at < filters.end)
    if filters.campaign_id is not None:
        conds.append(
            SurveyAnswer.attempt_id.in_(
                select(CallAttempt.id).where(CallAttempt.campaign_id == filters.campaign_id)
            )
        )
    if filters.department_id is not None:
        conds.append(Ticket.department_id == filters.department_id)
    if filters.neighbourhood_id is not None:
        conds.append(Ticket.neighbourhood_id == filters.neighbourhood_id)
    return conds


def _aggregate(
    session: Session, key: ColumnElement[Any] | InstrumentedAttribute[Any], filters: SurveyFilter
) -> dict[Any, _Acc]:
    """Group the filtered answers by ``key`` (an expression over answers and tickets)."""
    inner = (
        select(
            key.label("k"),
            SurveyQuestion.code.label("code"),
            SurveyAnswer.answer.label("answer"),
            SurveyAnswer.call_id.label("call_id"),
        )
        .select_from(SurveyAnswer)
        .join(SurveyQuestion, SurveyQuestion.id == SurveyAnswer.question_id)
        .outerjoin(Ticket, Ticket.id == SurveyAnswer.ticket_id)
        .where(*_conditions(filters))
        .subquery()
    )
    found: dict[Any, _Acc] = {}
    for k, code, count, total, yes in session.execute(
        select(
            inner.c.k,
            inner.c.code,
            func.count(),
            func.coalesce(func.sum(inner.c.answer), 0),
            func.coalesce(func.sum(case((inner.c.answer == SOLVED_YES, 1), else_=0)), 0),
        ).group_by(inner.c.k, inner.c.code)
    ):
        acc = found.setdefault(k, _Acc())
        acc.counts[code] = int(count)
        acc.sums[code] = int(total)
        if code == SOLVED:
            acc.yes = int(yes)
    for k, calls in session.execute(
        select(inner.c.k, func.count(distinct(inner.c.call_id))).group_by(inner.c.k)
    ):
        found.setdefault(k, _Acc()).surveys = int(calls)
    return found


def overall(session: Session, *, filters: SurveyFilter | None = None) -> SurveyFigures:
    """All filtered answers as one group (e.g. one campaign's results on its page)."""
    found = _aggregate(session, literal("all"), filters or SurveyFilter())
    acc = found.get("all", _Acc())
    return acc.figures("all", "Tümü", "All")


def _sorted(rows: Iterable[SurveyFigures]) -> list[SurveyFigures]:
    """Most surveyed first, then by name (answers without a group last)."""
    return sorted(rows, key=lambda r: (r.key is None, -r.surveys, r.label_tr))


def results_by_department(
    session: Session, *, filters: SurveyFilter | None = None
) -> list[SurveyFigures]:
    """One row per department of the surveyed tickets (R5.2); key ``None``: no department."""
    found = _aggregate(session, Ticket.department_id, filters or SurveyFilter())
    ids = [k for k in found if k is not None]
    names = {
        i: (tr, en)
        for i, tr, en in session.execute(
            select(Department.id, Department.name_tr, Department.name_en).where(
                Department.id.in_(ids)
            )
        )
    }
    rows = []
    for k, acc in found.items():
        tr, en = names.get(k, ("Müdürlüğü belirsiz", "No department"))
        rows.append(acc.figures(k, tr, en))
    return _sorted(rows)


def results_by_neighbourhood(
    session: Session, *, filters: SurveyFilter | None = None
) -> list[SurveyFigures]:
    """One row per neighbourhood of the surveyed tickets (R5.2); key ``None``: unknown."""
    found = _aggregate(session, Ticket.neighbourhood_id, filters or SurveyFilter())
    ids = [k for k in found if k is not None]
    names = {
        i: name
        for i, name in session.execute(
            select(Neighbourhood.id, Neighbourhood.name).where(Neighbourhood.id.in_(ids))
        )
    }
    rows = []
    for k, acc in found.items():
        name = names.get(k)
        rows.append(acc.figures(k, name or "Mahallesi belirsiz", name or "No neighbourhood"))
    return _sorted(rows)


def results_by_ticket(
    session: Session, *, filters: SurveyFilter | None = None, limit: int = 200
) -> list[SurveyFigures]:
    """One row per surveyed ticket (R5.2), labelled with its reference code, lowest
    satisfaction first (the ones to follow up), at most ``limit`` rows."""
    found = _aggregate(session, SurveyAnswer.ticket_id, filters or SurveyFilter())
    ids = [k for k in found if k is not None]
    codes = {
        i: code
        for i, code in session.execute(
            select(Ticket.id, Ticket.reference_code).where(Ticket.id.in_(ids))
        )
    }
    rows = [
        acc.figures(k, codes.get(k) or f"#{k}", codes.get(k) or f"#{k}")
        for k, acc in found.items()
        if k is not None
    ]
    rows.sort(key=lambda r: (r.satisfaction_mean is None, r.satisfaction_mean or 0, r.label_tr))
    return rows[:limit]


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def bucket_starts(start: date, end: date, period: Period) -> list[date]:
    """Local first days of the weeks (Mondays) or months covering ``[start, end)``, plus the
    first day after the last bucket (so ``n`` buckets have ``n + 1`` boundaries)."""
    if end <= start:
        raise InvalidField(
            "Dönemin sonu başlangıcından sonra olmalı.",
            "The end of the period must be after its start.",
            field="end",
        )
    if period is Period.WEEK:
        first = start - timedelta(days=start.weekday())
        days = [first]
        while days[-1] < end:
            days.append(days[-1] + timedelta(days=7))
    else:
        first = start.replace(day=1)
        days = [first]
        while days[-1] < end:
            last = days[-1]
            days.append(date(last.year + last.month // 12, last.month % 12 + 1, 1))
    if len(days) - 1 > MAX_BUCKETS:
        raise InvalidField(
            f"Dönem en fazla {MAX_BUCKETS} hafta ya da ay olabilir.",
            f"The period is at most {MAX_BUCKETS} weeks or months.",
            field="period",
        )
    return days


def _bucketed(
    session: Session,
    bounds: Sequence[datetime],
    keys: Sequence[Any],
    filters: SurveyFilter,
) -> dict[Any, _Acc]:
    """Answers in ``[bounds[0], bounds[-1])`` grouped by bucket ``keys[i]`` =
    ``[bounds[i], bounds[i + 1])``."""
    bucket = case(
        *[(SurveyAnswer.answered_at < b, i) for i, b in enumerate(bounds[1:])],
        else_=None,
    )
    narrowed = SurveyFilter(
        start=max(bounds[0], filters.start) if filters.start else bounds[0],
        end=min(bounds[-1], filters.end) if filters.end else bounds[-1],
        campaign_id=filters.campaign_id,
        department_id=filters.department_id,
        neighbourhood_id=filters.neighbourhood_id,
    )
    found = _aggregate(session, bucket, narrowed)
    return {keys[int(i)]: acc for i, acc in found.items() if i is not None}


def results_over_time(
    session: Session,
    *,
    start: date,
    end: date,
    period: Period = Period.WEEK,
    filters: SurveyFilter | None = None,
    tz: ZoneInfo = LOCAL_TZ,
) -> list[SurveyFigures]:
    """Satisfaction over time (R8.2): one row per local week (Monday first) or calendar
    month covering the local days ``start`` (inclusive) to ``end`` (exclusive), oldest first,
    empty buckets included (``surveys == 0``). ``key`` is the bucket's first day.

    Raises :class:`InvalidField` when ``end <= start`` or the report would have more than
    :data:`MAX_BUCKETS` rows. ``filters.start`` / ``filters.end`` further narrow the answers.
    """
    days = bucket_starts(start, end, period)
    bounds = [_local_midnight(d, tz) for d in days]
    found = _bucketed(session, bounds, days[:-1], filters or SurveyFilter())
    rows = []
    for day in days[:-1]:
        if period is Period.WEEK:
            tr = f"{day:%d.%m.%Y} haftası"
            en = f"week of {day:%d.%m.%Y}"
        else:
            tr = en = f"{day:%m.%Y}"
        rows.append(found.get(day, _Acc()).figures(day, tr, en))
    return rows


@dataclass(frozen=True)
class BeforeAfter:
    """The same figures for ``days`` days before and after a policy change (R8.2)."""

    pivot: datetime
    days: int
    before: SurveyFigures
    after: SurveyFigures

    @property
    def satisfaction_change(self) -> float | None:
        a, b = self.after.satisfaction_mean, self.before.satisfaction_mean
        return a - b if a is not None and b is not None else None

    @property
    def solved_share_change(self) -> float | None:
        a, b = self.after.solved_share, self.before.solved_share
        return a - b if a is not None and b is not None else None

    @property
    def courtesy_change(self) -> float | None:
        a, b = self.after.courtesy_mean, self.before.courtesy_mean
        return a - b if a is not None and b is not None else None


def before_after(
    session: Session,
    *,
    pivot: datetime,
    days: int = 30,
    filters: SurveyFilter | None = None,
) -> BeforeAfter:
    """Answers in ``[pivot - days, pivot)`` against ``[pivot, pivot + days)`` (R8.2), in one
    query. ``pivot`` is an aware datetime (e.g. local midnight of the day a policy changed);
    ``days`` is 1..366 (:class:`InvalidField` otherwise). ``filters.start``/``end`` are
    ignored: the two windows are the period."""
    if pivot.tzinfo is None:
        raise ValueError("pivot must be an aware datetime")
    if not 1 <= days <= 366:
        raise InvalidField(
            "Karşılaştırma süresi 1 ile 366 gün arasında olmalı.",
            "The comparison span must be between 1 and 366 days.",
            field="days",
        )
    base = filters or SurveyFilter()
    span = timedelta(days=days)
    bounds = [pivot - span, pivot, pivot + span]
    found = _bucketed(
        session,
        bounds,
        ["before", "after"],
        SurveyFilter(
            campaign_id=base.campaign_id,
            department_id=base.department_id,
            neighbourhood_id=base.neighbourhood_id,
        ),
    )
    return BeforeAfter(
        pivot=pivot,
        days=days,
        before=found.get("before", _Acc()).figures("before", "Önce", "Before"),
        after=found.get("after", _Acc()).figures("after", "Sonra", "After"),
    )
