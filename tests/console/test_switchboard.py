"""The switchboard screen: live calls from the call records, one-click transfer through the
console's AMI client, and the operator's note travelling with the call to the agent.

The transfer is tested against a scripted AMI server on a real socket: the console's own
blocking client (agent_console.ami) logs in, asks ``Status`` for the channels and sends
``BlindTransfer``; the server records what it was sent and answers as Asterisk 22 does. A
real Asterisk with sipp phones is not used here (it needs root and the shared PBX ports);
what Asterisk then does with a BlindTransfer is covered by tests/telephony.
"""

from __future__ import annotations

import itertools
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from agent_console.ami import ConsoleAmi
from agent_console.security import IDLE_TIMEOUT
from models import CallNote, CallRecord, Role, StaffUser
from services.call_records import (
    AgentAnswered,
    CallStarted,
    QueueJoined,
    TicketDue,
    apply_fact,
    open_call_tickets,
)
from tests.console.conftest import ConsoleEnv, csrf
from tests.console.samples import AYSE_MOBILE

_calls = itertools.count(1)


# --- a scripted AMI server ----------------------------------------------------------------


@dataclass
class FakeAmi:
    """Answers Login/Status/BlindTransfer/Logoff like Asterisk; ``channels`` are the live
    channels ``Status`` reports as (name, CALL_ID); ``actions`` is what it was sent."""

    channels: list[tuple[str, str]] = field(default_factory=list)
    refuse_transfer: bool = False
    actions: list[dict[str, str]] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def client(self) -> ConsoleAmi:
        return ConsoleAmi("127.0.0.1", self.port, "console", "secret", timeout=2.0)

    def close(self) -> None:
        self._server.close()

    def sent(self, action: str) -> list[dict[str, str]]:
        return [a for a in self.actions if a.get("Action") == action]

    def _serve(self) -> None:
        while True:
            try:
                conn, _addr = self._server.accept()
            except OSError:
                return
            with conn:
                self._session(conn)

    def _session(self, conn: socket.socket) -> None:
        conn.sendall(b"Asterisk Call Manager/9.0.0\r\n")
        buffer = b""
        while True:
            while b"\r\n\r\n" not in buffer:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buffer += chunk
            frame, _sep, buffer = buffer.partition(b"\r\n\r\n")
            fields = dict(
                line.split(": ", 1) for line in frame.decode().split("\r\n") if ": " in line
            )
            self.actions.append(fields)
            conn.sendall(self._answer(fields))
            if fields.get("Action") == "Logoff":
                return

    def _answer(self, fields: dict[str, str]) -> bytes:
        action, action_id = fields.get("Action"), fields.get("ActionID", "")

        def frame(**values: str) -> str:
            return "".join(f"{k}: {v}\r\n" for k, v in values.items()) + "\r\n"

        if action == "Login":
            return frame(
                Response="Success", ActionID=action_id, Message="Authentication accepted"
            ).encode()
        if action == "Status":
            out = frame(Response="Success", ActionID=action_id, EventList="start")
            for name, call_id in self.channels:
                out += frame(
                    Event="Status", ActionID=action_id, Channel=name, Variable=f"CALL_ID={call_id}"
                )
            out += frame(
                Event="StatusComplete",
                ActionID=action_id,
                EventList="Complete",
                ListItems=str(len(self.channels)),
            )
            return out.encode()
        if action == "BlindTransfer":
            if self.refuse_transfer:
                return frame(
                    Response="Error", ActionID=action_id, Message="No such channel"
                ).encode()
            return frame(
                Response="Success", ActionID=action_id, Message="Transfer succeeded"
            ).encode()
        if action == "Logoff":
            return frame(
                Response="Goodbye", ActionID=action_id, Message="Thanks for all the fish."
            ).encode()
        return frame(
            Response="Error", ActionID=action_id, Message="Invalid/unknown command"
        ).encode()


@pytest.fixture
def pbx(console_env: ConsoleEnv) -> Iterator[FakeAmi]:
    fake = FakeAmi()
    console_env.app.extensions["acikkapi"].ami = fake.client
    try:
        yield fake
    finally:
        fake.close()


# --- samples --------------------------------------------------------------------------------


def switchboard_call(env: ConsoleEnv, *, seconds_ago: int = 20) -> CallRecord:
    """A call that came in on the switchboard number and is with an operator now."""
    db, now = env.db, env.clock()
    call_id = f"1796000000.{next(_calls)}"
    apply_fact(
        db,
        now,
        CallStarted(
            call_id,
            now - timedelta(seconds=seconds_ago),
            AYSE_MOBILE,
            channel="PJSIP/trunk-00000007",
            dialled="2160000",
            via_switchboard=True,
        ),
    )
    db.flush()
    record = db.scalar(select(CallRecord).where(CallRecord.call_id == call_id))
    assert record is not None
    return record


def operator(env: ConsoleEnv) -> StaffUser:
    user = env.user(Role.SWITCHBOARD_OPERATOR)
    assert user.sip_extension
    return user


def answer_in_queue(env: ConsoleEnv, record: CallRecord, agent: StaffUser, now: datetime) -> None:
    """What the AMI listener writes when the transferred call is answered by an agent."""
    interface = f"PJSIP/{agent.sip_extension}"
    apply_fact(
        env.db, now, QueueJoined(record.call_id, now - timedelta(seconds=5), "cagri-merkezi")
    )
    apply_fact(env.db, now, AgentAnswered(record.call_id, now, interface, queue="cagri-merkezi"))
    env.db.flush()
    open_call_tickets(env.db, now, [TicketDue(record.call_id, True, interface, now)])
    env.db.flush()


# --- tests ----------------------------------------------------------------------------------


def test_live_calls_show_the_switchboard_call_on_the_operators_line(
    console_env: ConsoleEnv, pbx: FakeAmi
) -> None:
    record = switchboard_call(console_env)
    ended = switchboard_call(console_env)
    ended.ended_at = console_env.clock()
    console_env.db.flush()
    user = operator(console_env)
    pbx.channels = [(f"PJSIP/{user.sip_extension}-0000002a", record.call_id)]
    client = console_env.login(Role.SWITCHBOARD_OPERATOR)
    page = client.get("/switchboard")
    assert page.status_code == 200
    html = page.text
    assert "0505 361 88 77" in html and "santralde" in html
    assert f'data-call-id="{record.call_id}"' in html
    assert f'data-call-id="{ended.call_id}"' not in html  # ended: not live
    assert "hattınızda" in html  # the PBX says it is on this operator's phone
    assert f'data-selected="{record.call_id}"' in html  # opened for transfer
    assert 'id="to-call-centre"' in html and 'value="7000"' in html
    assert "Fen İşleri Müdürlüğü" in html and 'value="201"' in html  # the directory
    polled = client.get("/switchboard/calls", headers={"X-Requested-With": "fetch"})
    body = polled.get_json()
    assert body["mine"] == [record.call_id] and record.call_id in body["calls"]
    assert body["pbx_error"] is None and record.call_id in body["html"]


def test_transfer_sends_blind_transfer_from_the_operators_channel_and_the_note_travels(
    console_env: ConsoleEnv, pbx: FakeAmi
) -> None:
    record = switchboard_call(console_env)
    user = operator(console_env)
    channel = f"PJSIP/{user.sip_extension}-0000002a"
    pbx.channels = [("PJSIP/trunk-00000007", record.call_id), (channel, record.call_id)]
    client = console_env.login(Role.SWITCHBOARD_OPERATOR)
    note = "Su kesintisi hakkında şikâyet; 3 gündür su yok."
    response = client.post(
        f"/switchboard/calls/{record.call_id}/transfer",
        data={"target": "7000", "note": note, "csrf_token": csrf(client)},
    )
    assert response.status_code == 302
    transfers = pbx.sent("BlindTransfer")
    assert len(transfers) == 1
    assert transfers[0]["Channel"] == channel  # the operator's leg, not the citizen's
    assert transfers[0]["Exten"] == "7000" and transfers[0]["Context"] == "acikkapi-internal"
    assert pbx.sent("Login")[0]["Username"] == "console"  # the least-privilege AMI user
    stored = console_env.db.scalars(
        select(CallNote).where(CallNote.call_id == record.call_id)
    ).all()
    assert [(n.text, n.transfer_target, n.author_id) for n in stored] == [(note, "7000", user.id)]
    # The call reaches an agent: the agent's call page (the screen pop) shows the note.
    agent = console_env.user(Role.AGENT)
    answer_in_queue(console_env, record, agent, console_env.clock.advance(seconds=30))
    agent_client = console_env.login(Role.AGENT)
    panel = agent_client.get(
        f"/agent/calls/{record.call_id}", headers={"X-Requested-With": "fetch"}
    )
    assert panel.status_code == 200
    assert "Görüşmeyle gelen not" in panel.text and note in panel.text
    assert user.full_name in panel.text and "→ 7000" in panel.text


def test_transfer_to_a_unit_of_the_directory(console_env: ConsoleEnv, pbx: FakeAmi) -> None:
    record = switchboard_call(console_env)
    user = operator(console_env)
    pbx.channels = [(f"PJSIP/{user.sip_extension}-00000031", record.call_id)]
    client = console_env.login(Role.SWITCHBOARD_OPERATOR)
    response = client.post(
        f"/switchboard/calls/{record.call_id}/transfer",
        data={"target": "207", "csrf_token": csrf(client)},
        headers={"Accept": "application/json", "X-Requested-With": "fetch"},
    )
    assert response.status_code == 200, response.text
    assert "207 — Zabıta Müdürlüğü" in response.get_json()["message"]
    assert [t["Exten"] for t in pbx.sent("BlindTransfer")] == ["207"]
    # No note typed: none stored.
    assert not console_env.db.scalars(
        select(CallNote).where(CallNote.call_id == record.call_id)
    ).all()


@pytest.mark.parametrize("target", ["9999", "05321234567", "santral", ""])
def test_targets_outside_the_directory_never_reach_the_pbx(
    console_env: ConsoleEnv, pbx: FakeAmi, target: str
) -> None:
    record = switchboard_call(console_env)
    client = console_env.login(Role.SWITCHBOARD_OPERATOR)
    token = csrf(client)  # (loading the start page asks the PBX for the operator's line)
    pbx.actions.clear()
    response = client.post(
        f"/switchboard/calls/{record.call_id}/transfer",
        data={"target": target, "note": "not", "csrf_token": token},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 400
    assert response.get_json()["code"] in {"invalid_field", "missing_field"}
    assert pbx.actions == []  # not even a login
    assert not console_env.db.scalars(select(CallNote)).all()


def test_a_call_not_on_the_operators_line_is_not_transferred_and_no_note_is_kept(
    console_env: ConsoleEnv, pbx: FakeAmi
) -> None:
    record = switchboard_call(console_env)
    pbx.channels = [("PJSIP/1102-00000005", record.call_id)]  # the other operator has it
    client = console_env.login(Role.SWITCHBOARD_OPERATOR)
    response = client.post(
        f"/switchboard/calls/{record.call_id}/transfer",
        data={"target": "7000", "note": "İmar durumu soruyor", "csrf_token": csrf(client)},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 400
    assert "hattınızda değil" in response.get_json()["error"]
    assert pbx.sent("BlindTransfer") == []
    assert not console_env.db.scalars(select(CallNote)).all()


def test_a_refused_transfer_keeps_no_note(console_env: ConsoleEnv, pbx: FakeAmi) -> None:
    record = switchboard_call(console_env)
    user = operator(console_env)
    pbx.channels = [(f"PJSIP/{user.sip_extension}-0000002a", record.call_id)]
    pbx.refuse_transfer = True
    client = console_env.login(Role.SWITCHBOARD_OPERATOR)
    response = client.post(
        f"/switchboard/calls/{record.call_id}/transfer",
        data={"target": "7000", "note": "Gürültü şikâyeti", "csrf_token": csrf(client)},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 400 and response.get_json()["code"] == "pbx_refused"
    assert len(pbx.sent("BlindTransfer")) == 1
    assert not console_env.db.scalars(select(CallNote)).all()


def test_with_the_pbx_down_the_list_still_shows_and_transfer_says_why(
    console_env: ConsoleEnv,
) -> None:
    record = switchboard_call(console_env)  # no fake: the console's AMI port is closed
    client = console_env.login(Role.SWITCHBOARD_OPERATOR)
    page = client.get("/switchboard")
    assert page.status_code == 200 and record.call_id in page.text
    assert "yanıt vermiyor" in page.text  # the PBX error, in Turkish
    response = client.post(
        f"/switchboard/calls/{record.call_id}/transfer",
        data={"target": "7000", "note": "Bilgi istiyor", "csrf_token": csrf(client)},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 400 and response.get_json()["code"] == "pbx_unavailable"
    assert not console_env.db.scalars(select(CallNote)).all()


def test_a_note_without_transfer_and_its_limits(console_env: ConsoleEnv) -> None:
    record = switchboard_call(console_env)
    client = console_env.login(Role.SWITCHBOARD_OPERATOR)
    token = csrf(client)
    url = f"/switchboard/calls/{record.call_id}/note"
    json = {"Accept": "application/json"}
    assert (
        client.post(url, data={"note": "  ", "csrf_token": token}, headers=json).status_code == 400
    )
    too_long = client.post(url, data={"note": "x" * 501, "csrf_token": token}, headers=json)
    assert too_long.status_code == 400 and too_long.get_json()["code"] == "invalid_field"
    unknown = client.post(
        "/switchboard/calls/nope/note", data={"note": "a", "csrf_token": token}, headers=json
    )
    assert unknown.status_code == 404
    saved = client.post(url, data={"note": " Arayan geri aranmak istiyor ", "csrf_token": token})
    assert saved.status_code == 302
    notes = console_env.db.scalars(select(CallNote).where(CallNote.call_id == record.call_id)).all()
    assert [(n.text, n.transfer_target) for n in notes] == [("Arayan geri aranmak istiyor", None)]
    page = client.get(f"/switchboard?call={record.call_id}").text
    assert "Arayan geri aranmak istiyor" in page


def test_the_supervisor_watches_but_does_not_transfer(console_env: ConsoleEnv) -> None:
    record = switchboard_call(console_env)
    client = console_env.login(Role.SUPERVISOR)
    assert client.get("/").location == "/search"  # not sent to the switchboard on sign-in
    operator_home = console_env.login(Role.SWITCHBOARD_OPERATOR).get("/")
    assert operator_home.location == "/switchboard"
    page = client.get("/switchboard")
    assert page.status_code == 200 and record.call_id in page.text
    assert 'id="transfer-form"' not in page.text
    refused = client.post(
        f"/switchboard/calls/{record.call_id}/transfer",
        data={"target": "7000", "csrf_token": csrf(client)},
        headers={"Accept": "application/json"},
    )
    assert refused.status_code == 403 and refused.get_json()["code"] == "role_not_permitted"


def test_polling_the_live_calls_does_not_keep_the_session_alive(
    console_env: ConsoleEnv,
) -> None:
    client = console_env.login(Role.SWITCHBOARD_OPERATOR)
    fetch = {"X-Requested-With": "fetch", "Accept": "application/json"}
    idle_minutes = int(IDLE_TIMEOUT.total_seconds() // 60)
    for _ in range(idle_minutes // 2):
        console_env.clock.advance(minutes=2)
        assert client.get("/switchboard/calls", headers=fetch).status_code == 200
    console_env.clock.advance(minutes=idle_minutes - 2 * (idle_minutes // 2) + 2)
    expired = client.get("/switchboard/calls", headers=fetch)
    assert expired.status_code == 401
