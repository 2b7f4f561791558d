"""Campaign targets: import, exclusions, sources and CSV on SQLite and PostgreSQL (R5.1–R5.6)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import (
    Campaign,
    CampaignKind,
    CampaignTarget,
    CampaignTargetSource,
    CampaignTargetStatus,
    Citizen,
    Language,
    StaffUser,
    TicketStatus,
)
from services.campaign_targets import (
    NOTE_CITIZEN_DO_NOT_CALL,
    NOTE_DO_NOT_CALL,
    NOTE_NO_CONSENT,
    TargetRow,
    add_targets,
    parse_targets_csv,
    targets_from_citizen_group,
    targets_from_resolved_tickets,
)
from services.campaigns import CampaignSettings, create_campaign, stop_campaign
from services.do_not_call import add_do_not_call, blocked_numbers, remove_do_not_call
from services.errors import InvalidPhoneNumber, InvalidTransition
from services.intake import open_ticket
from tests.factories import add_citizen, mobile, mobile_e164, request


def campaign(session: Session, now: datetime, **kw: object) -> Campaign:
    values: dict[str, object] = {"name": "Bilgilendirme", "kind": CampaignKind.RESOLUTION_INFO}
    values.update(kw)
    return create_campaign(
        session,
        actor=None,
        now=now,
        settings=CampaignSettings(**values),  # type: ignore[arg-type]
        target_source=CampaignTargetSource.CSV,
        target_criteria={},
    )


def targets(session: Session, campaign_id: int) -> list[CampaignTarget]:
    return list(
        session.scalars(
            select(CampaignTarget)
            .where(CampaignTarget.campaign_id == campaign_id)
            .order_by(CampaignTarget.id)
        )
    )


def test_numbers_are_normalised_deduplicated_and_bad_ones_reported(
    session: Session, now: datetime
) -> None:
    c = campaign(session, now)
    rows = [
        TargetRow(phone=mobile(301_001), name="  Ayşe   Yılmaz "),
        TargetRow(phone=mobile_e164(301_001)),  # the same number, another form: duplicate
        TargetRow(phone=mobile_e164(301_001), ticket_id=None),
        TargetRow(phone="12"),
        TargetRow(phone=""),
        TargetRow(phone="+90 532 301 00 02", language=Language.EN),
    ]
    result = add_targets(session, now=now, campaign_id=c.id, rows=rows)
    assert (result.added, result.skipped, result.duplicates) == (2, 0, 2)
    assert [line for line, _ in result.errors] == [4, 5]
    assert all(text.startswith(f"Satır {line}: ") for line, text in result.errors)
    with pytest.raises(InvalidPhoneNumber) as bad:
        from services.identity import normalise_phone

        normalise_phone("12")
    assert bad.value.message_tr in result.errors[0][1]  # normalise_phone's own words
    first, second = targets(session, c.id)
    assert first.phone_e164 == mobile_e164(301_001) and first.display_name == "Ayşe Yılmaz"
    assert first.dedupe_key == f"{mobile_e164(301_001)}:"
    assert first.status == CampaignTargetStatus.PENDING and first.next_attempt_at == now
    assert first.language == Language.TR and second.language == Language.EN
    again = add_targets(session, now=now, campaign_id=c.id, rows=rows[:1])
    assert (again.added, again.duplicates) == (0, 1)


def test_the_same_number_may_be_called_once_per_ticket(
    session: Session, now: datetime, agent: StaffUser
) -> None:
    c = campaign(session, now)
    agent_ticket = open_ticket(
        session,
        agent,
        now,
        request(phone=mobile(301_010), address_text="Gül Sokak 1"),
    ).ticket
    rows = [
        TargetRow(phone=mobile(301_010)),
        TargetRow(phone=mobile(301_010), ticket_id=agent_ticket.id),
    ]
    result = add_targets(session, now=now, campaign_id=c.id, rows=rows)
    assert result.added == 2 and result.duplicates == 0
    keys = {t.dedupe_key for t in targets(session, c.id)}
    assert keys == {f"{mobile_e164(301_010)}:", f"{mobile_e164(301_010)}:{agent_ticket.id}"}


def test_do_not_call_and_missing_consent_are_stored_as_skipped(
    session: Session, now: datetime, supervisor: StaffUser
) -> None:
    """R5.6, KVKK: opted-out people are never dialled; the campaign page says why."""
    c = campaign(session, now)
    add_do_not_call(session, actor=supervisor, now=now, phone=mobile(301_020), reason="İstemiyor")
    refuses = add_citizen(session, now, mobile_e164(301_021), do_not_call=True)
    no_consent = add_citizen(session, now, mobile_e164(301_022), consent_calls=False)
    english = add_citizen(session, now, mobile_e164(301_023), preferred_language=Language.EN)
    add_citizen(session, now, mobile_e164(301_024), consent_calls=False)  # known by phone only
    rows = [
        TargetRow(phone=mobile(301_020)),
        TargetRow(phone=mobile(301_021), citizen_id=refuses.id),
        TargetRow(phone=mobile(301_022), citizen_id=no_consent.id),
        TargetRow(phone=mobile(301_023), citizen_id=english.id),
        TargetRow(phone=mobile(301_024)),  # CSV row: the citizen with this number opted out
    ]
    result = add_targets(session, now=now, campaign_id=c.id, rows=rows)
    assert (result.added, result.skipped) == (1, 4)
    by_phone = {t.phone_e164: t for t in targets(session, c.id)}
    assert by_phone[mobile_e164(301_020)].note == NOTE_DO_NOT_CALL
    assert by_phone[mobile_e164(301_021)].note == NOTE_CITIZEN_DO_NOT_CALL
    assert by_phone[mobile_e164(301_022)].note == NOTE_NO_CONSENT
    assert by_phone[mobile_e164(301_024)].note == NOTE_NO_CONSENT
    skipped = [t for t in by_phone.values() if t.status == CampaignTargetStatus.SKIPPED]
    assert len(skipped) == 4 and all(t.next_attempt_at is None for t in skipped)
    called = by_phone[mobile_e164(301_023)]
    assert called.status == CampaignTargetStatus.PENDING and called.language == Language.EN


def test_do_not_call_list_is_idempotent(session: Session, now: datetime) -> None:
    first = add_do_not_call(session, actor=None, now=now, phone=mobile(301_030), reason=None)
    again = add_do_not_call(session, actor=None, now=now, phone=mobile_e164(301_030), reason="x")
    assert first is again and first.phone_e164 == mobile_e164(301_030)
    assert blocked_numbers(session, [mobile_e164(301_030), mobile_e164(301_031)]) == {
        mobile_e164(301_030)
    }
    assert remove_do_not_call(session, actor=None, now=now, phone=mobile(301_030))
    assert not remove_do_not_call(session, actor=None, now=now, phone=mobile(301_030))
    assert blocked_numbers(session, [mobile_e164(301_030)]) == set()
    with pytest.raises(InvalidPhoneNumber):
        add_do_not_call(session, actor=None, now=now, phone="abc", reason=None)


def test_a_stopped_campaign_takes_no_more_targets(session: Session, now: datetime) -> None:
    c = campaign(session, now)
    stop_campaign(session, actor=None, now=now, campaign_id=c.id)
    with pytest.raises(InvalidTransition):
        add_targets(session, now=now, campaign_id=c.id, rows=[TargetRow(phone=mobile(301_045))])


def test_language_falls_back_to_the_campaign_default(session: Session, now: datetime) -> None:
    c = campaign(session, now, default_language=Language.EN)
    add_targets(session, now=now, campaign_id=c.id, rows=[TargetRow(phone=mobile(301_040))])
    assert targets(session, c.id)[0].language == Language.EN


def test_thousands_of_rows_go_in_batches(session: Session, now: datetime) -> None:
    c = campaign(session, now)
    rows = [TargetRow(phone=mobile_e164(3_100_000 + i)) for i in range(4500)]
    result = add_targets(session, now=now, campaign_id=c.id, rows=rows)
    assert result.added == 4500 and not result.errors
    assert len(targets(session, c.id)) == 4500


def test_targets_from_resolved_tickets_use_the_reporters_phone(
    session: Session, now: datetime, agent: StaffUser
) -> None:
    """R5.1/R5.2: tickets resolved in the period, the number that reported each."""
    period = datetime(2031, 3, 3, tzinfo=UTC)
    opened = [
        open_ticket(
            session,
            agent,
            now,
            request(
                phone=mobile(301_050 + i),
                description=f"Sokak lambası yanmıyor {i}",
                address_text=f"Lale Sokak {i + 1}",
            ),
        ).ticket
        for i in range(3)
    ]
    for i, ticket in enumerate(opened):
        ticket.status = TicketStatus.RESOLVED if i != 1 else TicketStatus.CLOSED
        ticket.resolved_at = period + timedelta(hours=i * 20)  # the third is outside
    session.flush()
    rows = targets_from_resolved_tickets(session, start=period, end=period + timedelta(days=1))
    assert [r.ticket_id for r in rows] == [opened[0].id, opened[1].id]
    assert rows[0].phone == mobile_e164(301_050) and rows[0].citizen_id == opened[0].citizen_id
    assert rows[0].name == "Ayşe Yılmaz"
    dept = opened[0].department_id
    only = targets_from_resolved_tickets(
        session, start=period, end=period + timedelta(days=1), department_id=dept
    )
    assert {r.ticket_id for r in only} <= {opened[0].id, opened[1].id}
    none = targets_from_resolved_tickets(
        session, start=period, end=period + timedelta(days=1), department_id=-1
    )
    assert none == []


def test_targets_from_citizen_group_pick_a_mobile(session: Session, now: datetime) -> None:
    """R5.5: special groups (elderly, disabled, ...) from the JSON list, on both backends."""
    elderly = add_citizen(
        session, now, mobile_e164(301_060), first_name="Hasan", special_groups=["elderly"]
    )
    both = add_citizen(session, now, mobile_e164(301_061), special_groups=["disabled", "elderly"])
    add_citizen(session, now, mobile_e164(301_062), special_groups=["elderly_care"])
    add_citizen(session, now, mobile_e164(301_063), special_groups=[])
    rows = [r for r in targets_from_citizen_group(session, group="elderly")]
    ours = [r for r in rows if r.citizen_id in (elderly.id, both.id)]
    assert [r.citizen_id for r in ours] == [elderly.id, both.id]
    assert ours[0].phone == mobile_e164(301_060) and ours[0].name == "Hasan"
    assert all(isinstance(session.get(Citizen, r.citizen_id), Citizen) for r in rows)
    assert all("elderly" in session.get(Citizen, r.citizen_id).special_groups for r in rows)  # type: ignore[union-attr]
    assert targets_from_citizen_group(session, group="  ") == []


def test_csv_with_bom_header_and_semicolons() -> None:
    text = (
        "\ufefftelefon;ad;dil\n0532 111 22 33;Ayşe Yılmaz;tr\n\n"
        "0532 111 22 34;;en\n;Boş\n0532 1;x;fr\n"
    )
    rows, errors = parse_targets_csv(text)
    assert [(r.phone, r.name, r.language, r.line) for r in rows] == [
        ("0532 111 22 33", "Ayşe Yılmaz", Language.TR, 2),
        ("0532 111 22 34", None, Language.EN, 4),
    ]
    assert [line for line, _ in errors] == [5, 6]
    assert "boş" in errors[0][1] and "dil" in errors[1][1]


def test_csv_without_header_comma_separated_and_bad_numbers_get_their_line(
    session: Session, now: datetime
) -> None:
    rows, errors = parse_targets_csv("05321112235,Ali\n0532 999,Veli\n")
    assert errors == [] and [r.line for r in rows] == [1, 2]
    c = campaign(session, now)
    result = add_targets(session, now=now, campaign_id=c.id, rows=rows)
    assert result.added == 1 and [line for line, _ in result.errors] == [2]
