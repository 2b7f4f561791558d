"""The supervisor's wallboard in the console: figures from the call records and tickets,
Asterisk's live queue state through the console's real AMI client (against a small AMI
server speaking Asterisk 22's QueueStatus), the periodic refresh, and its session rules."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from agent_console.ami import ConsoleAmi
from models import Role, StaffUser, Ticket
from services.call_records import AgentAnswered, CallStarted, QueueJoined, apply_fact
from tests.console.conftest import ConsoleEnv, csrf
from tests.console.samples import sample_ticket

SECRET = "wallboard-test-secret"


class AmiServer:
    """Enough of Asterisk's manager interface for ``QueueStatus``: the banner, ``Login``
    (checks the secret), ``QueueStatus`` answered with the events set in :attr:`events`
    (each gets the action's ``ActionID``), ``Logoff``. Counts the QueueStatus actions."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = int(self.sock.getsockname()[1])
        self.events: list[dict[str, str]] = []
        self.queue_status_calls = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                return
            with conn:
                self._session(conn)

    @staticmethod
    def _frame(fields: dict[str, str]) -> bytes:
        return ("".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n").encode()

    def _session(self, conn: socket.socket) -> None:
        conn.sendall(b"Asterisk Call Manager/9.0.0\r\n")
        buffer = b""
        while True:
            while b"\r\n\r\n" not in buffer:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buffer += chunk
            raw, _sep, buffer = buffer.partition(b"\r\n\r\n")
            action = dict(
                line.split(": ", 1) for line in raw.decode().split("\r\n") if ": " in line
            )
            aid = action.get("ActionID", "")
            name = action.get("Action", "")
            if name == "Login":
                ok = action.get("Username") == "console" and action.get("Secret") == SECRET
                reply = {"Response": "Success" if ok else "Error", "ActionID": aid}
                conn.sendall(self._frame(reply))
            elif name == "QueueStatus":
                self.queue_status_calls += 1
                start = {"Response": "Success", "ActionID": aid, "EventList": "start"}
                out = [self._frame({**start, "Message": "Queue status will follow"})]
                out += [self._frame({**event, "ActionID": aid}) for event in self.events]
                done = {"Event": "QueueStatusComplete", "ActionID": aid}
                out.append(self._frame({**done, "EventList": "Complete"}))
                conn.sendall(b"".join(out))
            elif name == "Logoff":
                conn.sendall(self._frame({"Response": "Goodbye", "ActionID": aid}))
                return
            else:
                conn.sendall(self._frame({"Response": "Error", "ActionID": aid}))

    def close(self) -> None:
        self.sock.close()


def member(queue: str, ext: str, name: str, **fields: str) -> dict[str, str]:
    """A ``QueueMember`` event as Asterisk 22 writes it for QueueStatus."""
    event = {
        "Event": "QueueMember",
        "Queue": queue,
        "Name": name,
        "Location": f"PJSIP/{ext}",
        "StateInterface": f"PJSIP/{ext}",
        "Membership": "static",
        "Penalty": "0",
        "CallsTaken": "0",
        "LastCall": "0",
        "LastPause": "0",
        "LoginTime": "1795846398",
        "InCall": "0",
        "Status": "1",
        "Paused": "0",
        "PausedReason": "",
        "Wrapuptime": "0",
    }
    event.update(fields)
    return event


def entry(queue: str, position: int, wait: int) -> dict[str, str]:
    return {
        "Event": "QueueEntry",
        "Queue": queue,
        "Position": str(position),
        "Channel": f"PJSIP/trunk-0000000{position}",
        "Uniqueid": f"1795846400.{position}",
        "CallerIDNum": "05321234567",
        "CallerIDName": "Arayan",
        "Wait": str(wait),
        "Priority": "0",
    }


@pytest.fixture
def pbx(console_env: ConsoleEnv) -> Iterator[AmiServer]:
    server = AmiServer()
    console_env.app.extensions["acikkapi"].ami = lambda: ConsoleAmi(
        "127.0.0.1", server.port, "console", SECRET, timeout=2.0
    )
    console_env.app.config["WALLBOARD_PBX_TTL"] = 0  # every request asks the PBX
    try:
        yield server
    finally:
        server.close()


def _agents(env: ConsoleEnv) -> list[StaffUser]:
    return list(
        env.db.scalars(
            select(StaffUser)
            .where(StaffUser.role == Role.AGENT, StaffUser.sip_extension.is_not(None))
            .order_by(StaffUser.id)
        )
    )


def _value(html: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}">([^<]*)<', html)
    assert found, element_id
    return found.group(1).strip()


def _queue_call(env: ConsoleEnv, seconds_ago: int, answered_by: StaffUser | None = None) -> str:
    now = env.clock()
    call_id = f"1797000000.{seconds_ago}{answered_by.id if answered_by else 0}"
    joined = now - timedelta(seconds=seconds_ago)
    apply_fact(env.db, now, CallStarted(call_id, joined - timedelta(seconds=5), "0532 111 22 33"))
    apply_fact(env.db, now, QueueJoined(call_id, joined, "cagri-merkezi"))
    if answered_by is not None:
        interface = f"PJSIP/{answered_by.sip_extension}"
        apply_fact(env.db, now, AgentAnswered(call_id, joined + timedelta(seconds=8), interface, 8))
    env.db.flush()
    return call_id


def test_the_board_shows_calls_agents_shifts_and_late_tickets(console_env: ConsoleEnv) -> None:
    db, now = console_env.db, console_env.clock()
    agent = _agents(console_env)[0]
    _queue_call(console_env, 45)  # waiting for 45 s
    _queue_call(console_env, 300, answered_by=agent)  # answered after 8 s, still talking
    late = sample_ticket(db, now - timedelta(days=20))
    assert late.due_at < now
    client = console_env.login(Role.SUPERVISOR)
    page = client.get("/wallboard")
    assert page.status_code == 200
    html = page.text
    assert "Çağrı merkezi panosu" in html
    assert _value(html, "wb-waiting") == "1"
    assert _value(html, "wb-longest") == "0:45"
    assert _value(html, "wb-answered") == "1 / 2"
    assert _value(html, "wb-sl") == "%100"  # Turkish writes the sign first; 1 of 1 decided
    assert _value(html, "wb-abandon") == "%0"
    assert "Gündüz vardiyası (08:00–16:00)" in html  # FIXED_NOW: 10:00 in Istanbul
    # The PBX is down in these tests: the board says where its figures come from.
    assert "çağrı kayıtlarından gösteriliyor" in html
    assert "Santral (Asterisk) şu anda yanıt vermiyor" in html
    assert agent.full_name in html and "Görüşmede" in html
    assert late.reference_code is not None and late.reference_code in html
    assert f'href="/tickets/{late.id}"' in html
    # CSP: behaviour comes from a static script, no inline code.
    assert 'src="/static/wallboard.js"' in html
    assert "<script>" not in html and " style=" not in html and "onclick" not in html


def test_the_refresh_fragment_follows_the_data(console_env: ConsoleEnv) -> None:
    client = console_env.login(Role.SUPERVISOR)
    fetch = {"X-Requested-With": "fetch"}
    first = client.get("/wallboard/board", headers=fetch)
    assert first.status_code == 200 and "<html" not in first.text
    assert _value(first.text, "wb-waiting") == "0"
    _queue_call(console_env, 20)
    console_env.clock.advance(seconds=5)
    second = client.get("/wallboard/board", headers=fetch).text
    assert _value(second, "wb-waiting") == "1"
    assert _value(second, "wb-longest") == "0:25"


def test_live_queue_state_comes_from_asterisk(console_env: ConsoleEnv, pbx: AmiServer) -> None:
    first, second = _agents(console_env)[:2]
    _queue_call(console_env, 400)  # the records would say a caller waits for 6:40
    pbx.events = [
        {"Event": "QueueParams", "Queue": "cagri-merkezi", "Calls": "2", "ServiceLevel": "20"},
        member("cagri-merkezi", str(first.sip_extension), "x", InCall="1", Status="2"),
        member("cagri-merkezi-en", str(first.sip_extension), "x", InCall="1", Status="2"),
        member("cagri-merkezi", str(second.sip_extension), "y", Paused="1", PausedReason="yemek"),
        member("cagri-merkezi", "1999", "Yedek Temsilci", Status="5"),
        entry("cagri-merkezi", 1, 95),
        entry("cagri-merkezi", 2, 12),
    ]
    client = console_env.login(Role.SUPERVISOR)
    html = client.get("/wallboard").text
    assert pbx.queue_status_calls == 1
    assert "çağrı kayıtlarından" not in html  # live figures
    assert _value(html, "wb-waiting") == "2"
    assert _value(html, "wb-longest") == "1:35"
    agents = html.split('id="wb-agents"', 1)[1].split("</table>", 1)[0]
    assert first.full_name in agents and second.full_name in agents
    assert "Yedek Temsilci" in agents  # a member without a staff record keeps its name
    states = html.split('id="wb-states"', 1)[1].split("</ul>", 1)[0]
    assert re.search(r"Görüşmede</span> <strong>1<", states)  # one agent in two queues
    assert re.search(r"Molada</span> <strong>1<", states) and "yemek" in agents
    assert re.search(r"Telefon bağlı değil</span> <strong>1<", states)
    # Asterisk changes its mind: the next refresh shows it.
    pbx.events = [member("cagri-merkezi", str(first.sip_extension), "x")]
    again = client.get("/wallboard/board", headers={"X-Requested-With": "fetch"}).text
    assert pbx.queue_status_calls == 2
    assert _value(again, "wb-waiting") == "0" and _value(again, "wb-longest") == "—"
    assert re.search(r"Hazır</span> <strong>1<", again.split('id="wb-states"', 1)[1])


def test_one_queue_status_serves_every_board_for_a_moment(
    console_env: ConsoleEnv, pbx: AmiServer
) -> None:
    console_env.app.config["WALLBOARD_PBX_TTL"] = 60
    supervisor = console_env.login(Role.SUPERVISOR)
    chief = console_env.login(Role.UNIT_CHIEF)
    for client in (supervisor, chief, supervisor):
        assert client.get("/wallboard/board").status_code == 200
    assert pbx.queue_status_calls == 1


def test_the_refresh_does_not_keep_the_session_alive(console_env: ConsoleEnv) -> None:
    client = console_env.login(Role.SUPERVISOR)
    assert client.get("/wallboard").status_code == 200  # the last real activity
    fetch = {"X-Requested-With": "fetch"}
    for _ in range(7):  # a wall screen nobody touches: 14 minutes of refreshes
        console_env.clock.advance(minutes=2)
        assert client.get("/wallboard/board", headers=fetch).status_code == 200
    console_env.clock.advance(minutes=2)
    expired = client.get("/wallboard/board", headers=fetch)
    assert expired.status_code == 401 and expired.get_json()["code"] == "session_expired"


def test_english_board(console_env: ConsoleEnv) -> None:
    client = console_env.login(Role.SUPERVISOR)
    client.post("/language", data={"lang": "en", "csrf_token": csrf(client)})
    html = client.get("/wallboard").text
    assert "Call-centre wallboard" in html and "Service level" in html
    assert "Day shift (08:00–16:00)" in html
    assert _value(html, "wb-sl") == "—"  # no calls yet: no rate, not 0 %


def test_who_sees_the_board(console_env: ConsoleEnv) -> None:
    for role in (Role.SUPERVISOR, Role.ADVISOR, Role.UNIT_CHIEF):
        assert console_env.login(role).get("/wallboard").status_code == 200, role
    for role in (Role.AGENT, Role.DEPARTMENT_LIAISON, Role.MAYORS_OFFICE):
        refused = console_env.login(role).get("/wallboard", headers={"Accept": "application/json"})
        assert refused.status_code == 403, role
    supervisor = console_env.login(Role.SUPERVISOR)
    assert 'href="/wallboard"' in supervisor.get("/search").text  # in the menu
    agent = console_env.login(Role.AGENT)
    assert 'href="/wallboard"' not in agent.get("/search").text


def test_the_tickets_past_sla_list_is_ordered_and_counted(console_env: ConsoleEnv) -> None:
    db, now = console_env.db, console_env.clock()
    older = sample_ticket(db, now - timedelta(days=30))
    newer = sample_ticket(db, now - timedelta(days=20), type_code="gurultu")
    html = console_env.login(Role.SUPERVISOR).get("/wallboard").text
    table = html.split('id="wb-sla"', 1)[1].split("</table>", 1)[0]
    assert older.reference_code and newer.reference_code
    assert table.index(older.reference_code) < table.index(newer.reference_code)
    count = int(_value(html, "wb-past-sla").rstrip("+"))
    late = db.scalars(select(Ticket).where(Ticket.due_at <= now)).all()
    assert count >= 2 and count <= len(late)
