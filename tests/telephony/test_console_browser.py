"""The agent console in a real browser on a real call (issue 4, item 10).

Debian's Chromium driven by Playwright (Python); a real Asterisk with our configuration, our
FastAGI server and AMI listener as subprocesses (the ``pbx`` / ``call_stack`` fixtures of
tests/telephony), sipp playing the citizen and the phones, the console served by waitress.

An agent signs in, joins the queues, pauses and gets ready again (AMI user ``console``), a
citizen calls, the screen pop appears on the agent's page with the greeting and the citizen
card, the agent records the ticket from it and sees the reference code, the acknowledgement
SMS is in the outbox, and the agent transfers the live call to a department's extension.
Screenshots of the main screens go to test-artifacts/screenshots/ and docs/screenshots/.
Every wait is bounded; nothing asserts wall-clock speed.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from models import CallRecord, Notification, NotificationChannel, Role, StaffUser, Ticket
from services.staff_auth import hash_password
from tests.console.conftest import PASSWORD
from tests.telephony import sipp_tools
from tests.telephony.ami_tools import first
from tests.telephony.conftest import AGENT_PORTS, TRUNK_PORT, CallStack, PbxHandle

pytestmark = pytest.mark.telephony

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]
SHOTS = [REPO / "test-artifacts" / "screenshots", REPO / "docs" / "screenshots"]
CALLER = "05352483071"  # demo citizen Ilgaz Güneş (not used by tests/telephony)
DEPARTMENT = "201"  # Fen İşleri's extension: the transfer target
DEPARTMENT_PORT = 5131
WAIT_MS = 45_000  # a screen pop, a page: bounded waits, not speed claims


def shot(page: Any, name: str) -> None:
    SHOTS[0].mkdir(parents=True, exist_ok=True)
    path = SHOTS[0] / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    SHOTS[1].mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS[1] / path.name)


@contextlib.contextmanager
def console_server(stack: CallStack) -> Iterator[str]:
    from waitress.server import create_server

    from agent_console import create_app

    app = create_app(stack.settings)
    server = create_server(app, host="127.0.0.1", port=0, threads=8)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        hub = app.extensions["acikkapi"].screenpops
        if hub is not None:
            hub.stop()
        server.close()
        thread.join(5)


@contextlib.contextmanager
def browser() -> Iterator[Any]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is needed (apt-get install chromium)")
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


def give_password(stack: CallStack, *roles: Role) -> dict[Role, StaffUser]:
    users = {}
    with stack.session() as db:
        for role in roles:
            user = db.scalars(
                select(StaffUser).where(StaffUser.role == role).order_by(StaffUser.id)
            ).first()
            assert user is not None
            user.password_hash = hash_password(PASSWORD)
            users[role] = user
        db.commit()
    return users


def sign_in(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit].primary")


def member_state(handle: PbxHandle, interface: str) -> tuple[str, str]:
    """(Paused, PausedReason) of ``interface`` in the Turkish queue, straight from Asterisk."""
    ami = handle.ami("listener", events="off")
    try:
        ami.action("QueueStatus", Queue="cagri-merkezi", Member=interface)
        event = ami.wait_event(
            lambda e: (
                first(e, "Event") == "QueueMember"
                and interface in (first(e, "Location"), first(e, "Interface"))
            ),
            timeout=10,
        )
        return first(event, "Paused"), first(event, "PausedReason")
    finally:
        ami.close()


@contextlib.contextmanager
def department_phone(handle: PbxHandle) -> Iterator[None]:
    """The department's desk phone registered (its own port) for the block."""
    password = handle.secrets.sip_password(DEPARTMENT)
    sipp_tools.register(handle.workdir, handle.sip_target, DEPARTMENT, password, DEPARTMENT_PORT)
    try:
        yield
    finally:
        with contextlib.suppress(AssertionError):
            sipp_tools.register(
                handle.workdir, handle.sip_target, DEPARTMENT, password, DEPARTMENT_PORT, expires=0
            )


def wait_for(probe: Any, what: str, timeout: float = 45.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.25)


def test_agent_gets_the_screen_pop_records_the_ticket_and_transfers(
    call_stack: CallStack,
) -> None:
    stack = call_stack
    pbx_handle = stack.pbx
    users = give_password(stack, Role.AGENT, Role.SUPERVISOR)
    agent = users[Role.AGENT]
    assert agent.sip_extension == "1001"
    interface = "PJSIP/1001"
    from tests.telephony.test_call_flows import finish, ivr_digit_after, phones, running

    with console_server(stack) as base, browser() as chromium, phones(pbx_handle, "1001"):
        context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="tr-TR")
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(f"{base}/login")
        page.fill("#username", agent.username)
        shot(page, "01-sign-in")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit].primary")
        page.wait_for_url(f"{base}/agent", timeout=WAIT_MS)

        # Out of the queues and back in, a pause with a reason, ready again: all through the
        # AMI user `console`, checked against Asterisk's own QueueStatus.
        page.click("#queue-logout")
        page.wait_for_selector("#agent-state[data-code=signed_out]", timeout=WAIT_MS)
        assert member_state(pbx_handle, interface)[0] == "1"
        page.click("#queue-login")
        page.wait_for_selector("#agent-state[data-code=ready]", timeout=WAIT_MS)
        assert member_state(pbx_handle, interface)[0] == "0"
        page.select_option("#pause-reason", "mola")
        page.click("#pause")
        page.wait_for_selector("#agent-state[data-code=paused]", timeout=WAIT_MS)
        assert member_state(pbx_handle, interface) == ("1", "mola")
        page.click("#ready")
        page.wait_for_selector("#agent-state[data-code=ready]", timeout=WAIT_MS)
        assert member_state(pbx_handle, interface)[0] == "0"
        shot(page, "02-agent-ready")

        # A citizen calls; agent 1001 answers (sipp) and talks until the transfer.
        phone = sipp_tools.agent_talk(
            pbx_handle.workdir, pbx_handle.sip_target, AGENT_PORTS["1001"], hold_ms=90_000
        )
        with running(phone), department_phone(pbx_handle):
            department = sipp_tools.agent_talk(
                pbx_handle.workdir, pbx_handle.sip_target, DEPARTMENT_PORT, hold_ms=3000
            )
            with running(department):
                time.sleep(0.3)
                caller = sipp_tools.citizen(
                    pbx_handle.workdir,
                    pbx_handle.sip_target,
                    pbx_handle.settings.call_centre_number,
                    TRUNK_PORT,
                    CALLER,
                    [(ivr_digit_after(pbx_handle), "1")],
                )
                with running(caller):
                    # The screen pop: greeting with the agent's name, the citizen card.
                    page.wait_for_selector("#greeting", timeout=90_000)
                    greeting = page.inner_text("#greeting")
                    assert f"Açık Kapı, ben {agent.first_name}," in greeting
                    assert "ILGAZ GÜNEŞ" in page.inner_text(".citizen-card")
                    assert "57*******30" in page.inner_text(".citizen-card")
                    call_id = page.get_attribute("article.call", "data-call-id")
                    assert call_id
                    placeholder = page.inner_text("#call-ticket-code")
                    shot(page, "03-screen-pop")

                    # The agent records the ticket from the pop and sees its reference code.
                    page.select_option("#tf-type", "yol_bozuklugu")
                    page.fill(
                        "#tf-desc", "Doğanbey'de kaldırımda çökme var, yayalar için tehlikeli."
                    )
                    page.click("#ticket-submit")
                    page.wait_for_selector("#reference-code", timeout=WAIT_MS)
                    code = page.inner_text("#reference-code")
                    assert code and code != placeholder
                    shot(page, "04-ticket")

                    # Back on the agent screen, the live call is still there: transfer it.
                    page.goto(f"{base}/agent")
                    page.wait_for_selector(f'article.call[data-call-id="{call_id}"]')
                    page.select_option("#tr-target", DEPARTMENT)
                    page.click("#transfer-submit")
                    page.wait_for_selector(".flash-info", timeout=WAIT_MS)
                    assert "aktarıldı" in page.inner_text(".flashes")
                    finish(caller, "caller")
                    finish(department, f"department {DEPARTMENT}")
                    finish(phone, "agent 1001")

        # What the database says: the ticket, its acknowledgement SMS, the transfer chain.
        with stack.session() as db:
            ticket = db.scalar(select(Ticket).where(Ticket.reference_code == code))
            assert ticket is not None and ticket.received_by_id == agent.id
            assert ticket.ticket_type.code == "yol_bozuklugu"
            sms = db.scalars(
                select(Notification).where(
                    Notification.ticket_id == ticket.id,
                    Notification.channel == NotificationChannel.SMS,
                )
            ).all()
            assert [n.recipient for n in sms] == ["+905352483071"]
            assert sms[0].payload["reference_code"] == code

        def transferred() -> CallRecord | None:
            with stack.session() as db:
                record = db.scalar(select(CallRecord).where(CallRecord.call_id == call_id))
                return record if record is not None and record.transfer_chain else None

        record = wait_for(transferred, "the transfer in the call's transfer chain")
        assert record.ticket_id == ticket.id
        assert [(e["kind"], e["from"]) for e in record.transfer_chain] == [("blind", interface)]
        assert DEPARTMENT in str(record.transfer_chain[0]["to"])

        # The citizen's record from a search, and the supervisor's access log.
        page.goto(f"{base}/search?q={CALLER}")
        page.click("#citizen-results a")
        page.wait_for_selector(".citizen-card")
        shot(page, "05-citizen-record")
        context.close()
        supervisor_context = chromium.new_context(viewport={"width": 1280, "height": 900})
        page = supervisor_context.new_page()
        sign_in(page, base, users[Role.SUPERVISOR].username)
        page.goto(f"{base}/audit")
        page.wait_for_selector("#audit-events")
        assert "screen pop: call" in page.inner_text("#audit-events")
        shot(page, "06-audit-log")
        page.click(".lang-switch button")
        page.wait_for_selector("html[lang=en]")
        shot(page, "07-audit-log-english")
        supervisor_context.close()
        assert errors == [], errors  # no script errors, no CSP violations
