"""Switchboard, coordination desk, department inbox and walk-in desk in a real browser.

The console runs as ``acikkapi console run`` (a subprocess, waitress) on a fresh SQLite
instance loaded with the demo data (``acikkapi db upgrade`` + ``acikkapi demo load``: every
demo user's password is ``acikkapi-demo``) plus a few tickets and a live switchboard call
written through the domain services. The PBX is the scripted AMI server of
test_switchboard.py (the console's real AMI client talks to it over a socket), so the
switchboard shows the call on the operator's line. Debian's Chromium, driven by Playwright,
signs in per role, works the screens (the desk form on a tablet-sized touch screen with a
camera photo) and saves screenshots to test-artifacts/screenshots/ and docs/screenshots/.
Every wait is bounded; nothing asserts wall-clock speed.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from acikkapi.db import make_engine
from acikkapi.settings import Settings
from models import Attachment, Channel, Department, Role, StaffUser, Ticket
from services.actors import system_actor
from services.call_notes import add_call_note
from services.call_records import CallStarted, apply_fact
from services.intake import open_ticket
from services.intake_request import IntakeRequest
from services.ticket_photos import PhotoUpload, add_photos, attachment_store
from services.ticket_workflow import forward_ticket
from telephony.secrets import ensure_secrets
from tests.console.browser import launch_chromium, shot, sign_in, start_console
from tests.console.test_switchboard import FakeAmi

CALL_ID = "1797000000.42"


def photo_png(width: int = 480, height: int = 360) -> bytes:
    """A real PNG (a sky-to-asphalt gradient) for the screenshots, built with the stdlib."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = bytearray()
    for y in range(height):
        rows.append(0)
        for x in range(width):
            t = y / height
            rows += bytes((int(90 + 100 * (1 - t)), int(140 + 60 * (1 - t)), int(200 - 120 * t)))
            if 0.6 < t < 0.7 and (x // 40) % 2 == 0:
                rows[-3:] = b"\xf0\xf0\xf0"  # road markings
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


@dataclass
class Demo:
    base: str
    database_url: str
    instance: Path
    users: dict[Role, StaffUser]
    tickets: dict[str, int]
    pbx: FakeAmi

    def session(self) -> Session:
        return Session(make_engine(self.database_url))


def _seed(database_url: str, instance: Path) -> tuple[dict[Role, StaffUser], dict[str, int]]:
    """Tickets for every screen and a live switchboard call, through the services."""
    now = datetime.now(UTC)
    engine = make_engine(database_url)
    tickets: dict[str, int] = {}
    with Session(engine, expire_on_commit=False) as db:
        robot = system_actor(db, "screens", now)

        def intake(key: str, **fields: Any) -> Ticket:
            result = open_ticket(db, robot, now - timedelta(hours=1), IntakeRequest(**fields))
            tickets[key] = result.ticket.id
            return result.ticket

        road = intake(
            "road",
            channel=Channel.PHONE,
            ticket_type_code="yol_bozuklugu",
            description="Menekşe Sokak'ta derin bir çukur var; akşamları görünmüyor.",
            tc_number="41339237316",
            neighbourhood="Yıldıztepe",
            address_text="Menekşe Sokak No: 23",
        )
        intake(
            "road_again",
            channel=Channel.WEB,
            ticket_type_code="tehlikeli_yol_bozuklugu",
            description="Menekşe Sokak'taki çukur büyüdü, bir araç lastiği patladı.",
            tc_number="41339237316",
            first_name="Ayşe",
            last_name="Yılmaz",
            neighbourhood="Yıldıztepe",
        )
        intake(
            "noise",
            channel=Channel.SMS,
            ticket_type_code="gurultu",
            description="Gece 2'de inşaat gürültüsü.",
            tc_number="82058652264",
            phone="0533 450 08 38",
        )
        liaison = db.scalars(
            select(StaffUser)
            .where(StaffUser.role == Role.DEPARTMENT_LIAISON)
            .order_by(StaffUser.id)
        ).first()
        assert liaison is not None and liaison.department_id is not None
        fen = db.get(Department, liaison.department_id)
        assert fen is not None
        park = intake(
            "park",
            channel=Channel.MAYORS_OFFICE,
            ticket_type_code="tehlikeli_yol_bozuklugu",
            description="Okul önündeki kaldırım çökmüş.",
            tc_number="26727044394",
            neighbourhood="Kuzeykent",
            address_text="İstiklal Caddesi, ilkokul önü",
        )
        supervisor = db.scalars(select(StaffUser).where(StaffUser.role == Role.SUPERVISOR)).first()
        assert supervisor is not None
        forward_ticket(db, supervisor, now, park, fen, "Öncelikli: okul önü")
        add_photos(
            db,
            supervisor,
            now,
            park,
            [PhotoUpload("kaldirim.png", photo_png())],
            store_dir=attachment_store(instance),
        )
        forward_ticket(db, supervisor, now, road, fen)
        apply_fact(
            db,
            now,
            CallStarted(
                CALL_ID,
                now - timedelta(seconds=35),
                "05053618877",
                channel="PJSIP/trunk-00000009",
                dialled="2160000",
                via_switchboard=True,
            ),
        )
        db.flush()
        operator = db.scalars(
            select(StaffUser)
            .where(StaffUser.role == Role.SWITCHBOARD_OPERATOR)
            .order_by(StaffUser.id)
        ).first()
        assert operator is not None
        add_call_note(db, operator, now, CALL_ID, "Arayan su kesintisini soruyor.")
        users = {}
        for role in (
            Role.SWITCHBOARD_OPERATOR,
            Role.SUPERVISOR,
            Role.DEPARTMENT_LIAISON,
            Role.DESK_STAFF,
        ):
            user = db.scalars(
                select(StaffUser).where(StaffUser.role == role).order_by(StaffUser.id)
            ).first()
            assert user is not None
            users[role] = user
        db.commit()
    engine.dispose()
    return users, tickets


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    pbx = FakeAmi()

    def seed(settings: Settings) -> tuple[dict[Role, StaffUser], dict[str, int]]:
        ensure_secrets(settings, ())
        users, tickets = _seed(settings.database_url, settings.instance_dir)
        operator = users[Role.SWITCHBOARD_OPERATOR]
        pbx.channels = [(f"PJSIP/{operator.sip_extension}-00000051", CALL_ID)]
        return users, tickets

    try:
        with start_console(
            tmp_path_factory.mktemp("screens"),
            secret="screens-test-secret",
            seed=seed,
            ami_port=pbx.port,
            redis_db=13,
            threads=8,
            extra_env={"ACIKKAPI_AMI_SECRET_CONSOLE": "screens"},
        ) as live:
            users, tickets = live.seeded
            yield Demo(
                live.base, live.database_url, live.settings.instance_dir, users, tickets, pbx
            )
    finally:
        pbx.close()


@pytest.fixture(scope="module")
def chromium(demo: Demo) -> Iterator[Any]:
    with launch_chromium() as browser:
        yield browser


def _page(chromium: Any, demo: Demo, role: Role, **context: Any) -> Any:
    """A new page signed in as the first demo user of ``role``; CSP violations collected."""
    return sign_in(chromium, demo.base, demo.users[role].username, **context)


def test_switchboard_screen(chromium: Any, demo: Demo) -> None:
    page = _page(chromium, demo, Role.SWITCHBOARD_OPERATOR, viewport={"width": 1366, "height": 900})
    assert page.url.endswith("/switchboard")  # the operator's first screen
    row = page.locator(f'tr[data-call-id="{CALL_ID}"]')
    row.wait_for()
    assert "hattınızda" in row.inner_text()
    assert "Arayan su kesintisini soruyor." in page.inner_text(".call-notes")
    page.fill("#dir-filter", "zabıta")
    visible = page.locator("#directory li:not([hidden])")
    assert visible.count() == 1 and "207" in visible.inner_text()
    page.fill("#dir-filter", "")
    page.fill("#sb-note", "İmar durumu hakkında bilgi istiyor.")
    shot(page, "20-switchboard")
    page.click("#to-call-centre")
    page.wait_for_selector(".flash-success")
    assert "Görüşme aktarıldı" in page.inner_text(".flashes")
    [transfer] = demo.pbx.sent("BlindTransfer")
    assert transfer["Exten"] == "7000"
    assert transfer["Channel"].startswith(
        f"PJSIP/{demo.users[Role.SWITCHBOARD_OPERATOR].sip_extension}-"
    )
    assert page.csp_errors == []


def test_coordination_desk_screens(chromium: Any, demo: Demo) -> None:
    page = _page(chromium, demo, Role.SUPERVISOR, viewport={"width": 1366, "height": 900})
    page.goto(f"{demo.base}/coordination")
    page.wait_for_selector(".desk-list")
    shot(page, "21-coordination-desk")
    page.goto(f"{demo.base}/coordination/{demo.tickets['road_again']}")
    page.wait_for_selector("#forward-form")
    shot(page, "22-coordination-ticket")
    page.click("text=Birleştirmeyi önizle")
    page.wait_for_selector(".merge-compare")
    assert page.locator(".merge-side").count() == 2
    shot(page, "23-coordination-merge-preview")
    assert page.csp_errors == []


def test_department_inbox_screens(chromium: Any, demo: Demo) -> None:
    page = _page(chromium, demo, Role.DEPARTMENT_LIAISON, viewport={"width": 1280, "height": 900})
    assert page.url.endswith("/department")  # the liaison's first screen
    page.wait_for_selector(".inbox-list")
    text = page.inner_text(".inbox-list")
    with demo.session() as db:
        codes = {k: db.get(Ticket, v).reference_code for k, v in demo.tickets.items()}  # type: ignore[union-attr]
    assert codes["park"] in text and codes["noise"] not in text  # own unit only
    shot(page, "24-department-inbox")
    page.goto(f"{demo.base}/department/{demo.tickets['park']}")
    image = page.locator(".photos img").first
    image.wait_for()
    assert page.evaluate("img => img.naturalWidth", image.element_handle()) > 0
    shot(page, "25-department-ticket")
    page.click("#accept-submit")
    page.wait_for_selector(".flash-success")
    assert page.csp_errors == []


def test_walk_in_desk_on_a_tablet_with_a_camera_photo(
    chromium: Any, demo: Demo, tmp_path: Path
) -> None:
    tablet = {"viewport": {"width": 820, "height": 1180}, "has_touch": True, "is_mobile": True}
    page = _page(chromium, demo, Role.DESK_STAFF, **tablet)
    assert page.url.endswith("/desk")  # the desk staff's first screen
    staff = demo.users[Role.DESK_STAFF]
    assert f"ben {staff.first_name}," in page.inner_text("#greeting")
    page.select_option("#d-type", "park_bakimi")
    page.fill("#d-desc", "Lale Parkı'ndaki salıncak kırık, çocuklar için tehlikeli.")
    page.fill("#d-first", "Zeynep")
    page.fill("#d-last", "Kılıç")
    page.fill("#d-phone", "0532 700 11 22")
    page.select_option("#d-hood", "Yıldıztepe")
    page.fill("#d-address", "Lale Parkı")
    photo = tmp_path / "salincak.png"
    photo.write_bytes(photo_png())
    page.set_input_files("#d-photo-1", str(photo))
    page.wait_for_selector("#d-preview-1 img")
    shot(page, "26-desk-form-tablet")
    page.click("#desk-submit")
    page.wait_for_selector("#reference-code")
    code = page.inner_text("#reference-code").strip()
    shot(page, "27-desk-receipt-tablet")
    with demo.session() as db:
        ticket = db.scalar(select(Ticket).where(Ticket.reference_code == code))
        assert ticket is not None and ticket.channel is Channel.DESK
        assert ticket.received_by_id == staff.id
        photos = db.scalars(select(Attachment).where(Attachment.ticket_id == ticket.id)).all()
        assert [p.media_type for p in photos] == ["image/png"]
    assert page.inner_text("#photo-count").strip() == "1"
    assert page.csp_errors == []
