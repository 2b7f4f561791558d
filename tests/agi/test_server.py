"""The FastAGI server over real TCP, spoken to as Asterisk does (protocol-level tests).

Each test starts the real server (panoramisk application, routes, worker threads, its own
SQLite database) on an ephemeral loopback port and plays Asterisk: it sends the ``agi_*``
header block, answers every command (``200 result=1``...) and records the exact commands.
The end-to-end proof with a real Asterisk and sipp is in the telephony suite.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Engine, create_engine, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from acikkapi.db import make_session_factory
from agi.protocol import quote
from agi.server import MAX_HEADER_BYTES
from models import CallbackReason, CallbackStatus, CallbackTask, SurveyAnswer, SurveyQuestion
from tests.agi.conftest import (
    AYSE,
    GULSUM,
    HANGUP,
    JOHN,
    QUOTED,
    SHARED_LANDLINE,
    RunningServer,
    agi_call,
    asterisk_parse_args,
    citizen_id_by_phone,
    headers_block,
)
from tests.conftest import FIXED_NOW

# -- caller_lookup ---------------------------------------------------------------------------


def test_known_caller_gets_every_variable_and_callerid_name(
    agi_server: RunningServer, agi_engine: Engine
) -> None:
    ayse = citizen_id_by_phone(agi_engine, AYSE)
    call = agi_call(agi_server.port, "caller_lookup", variables={"AK_LANG": "tr"})
    assert call.commands == [
        "GET VARIABLE AK_LANG",
        'SET VARIABLE AK_CALLER_E164 "+905053618877"',
        f'SET VARIABLE AK_CITIZEN_ID "{ayse}"',
        'SET VARIABLE AK_CITIZEN_NAME "Ayşe Yılmaz"',
        'SET VARIABLE AK_OPEN_TICKETS "1"',
        'SET VARIABLE AK_PRIORITY "0"',
        'SET VARIABLE CALLERID(name) "Ayşe Yılmaz"',
    ]  # the IVR's language choice (AK_LANG already set) is left alone


def test_language_from_citizen_only_when_the_dialplan_set_none(agi_server: RunningServer) -> None:
    call = agi_call(agi_server.port, "caller_lookup", callerid="+90 533 547 53 42")
    assert call.channel["AK_CALLER_E164"] == JOHN
    assert call.channel["AK_CITIZEN_NAME"] == "John Smith"
    assert call.set_commands[-1] == 'SET VARIABLE AK_LANG "en"'
    chosen = agi_call(agi_server.port, "caller_lookup", callerid=JOHN, variables={"AK_LANG": "tr"})
    assert chosen.channel["AK_LANG"] == "tr"
    assert not any("AK_LANG" in c for c in chosen.set_commands)


def test_flagged_group_raises_priority(agi_server: RunningServer) -> None:
    call = agi_call(agi_server.port, "caller_lookup", callerid="05302650201")
    assert call.channel["AK_CALLER_E164"] == GULSUM
    assert call.channel["AK_PRIORITY"] == "10"  # elderly


def test_unknown_caller_is_anonymous_but_numbered(agi_server: RunningServer) -> None:
    call = agi_call(agi_server.port, "caller_lookup", callerid="0532 000 00 01")
    assert call.commands == [
        "GET VARIABLE AK_LANG",
        'SET VARIABLE AK_CALLER_E164 "+905320000001"',
        'SET VARIABLE AK_CITIZEN_ID ""',
        'SET VARIABLE AK_CITIZEN_NAME ""',
        'SET VARIABLE AK_OPEN_TICKETS "0"',
        'SET VARIABLE AK_PRIORITY "0"',
        'SET VARIABLE AK_LANG "tr"',
    ]
    assert call.channel["AK_CITIZEN_ID"] == ""


def test_shared_phone_identifies_nobody(agi_server: RunningServer) -> None:
    call = agi_call(agi_server.port, "caller_lookup", callerid="0216 438 62 93")
    assert call.channel["AK_CALLER_E164"] == SHARED_LANDLINE
    assert call.channel["AK_CITIZEN_ID"] == ""
    assert not any(c.startswith("SET VARIABLE CALLERID") for c in call.commands)


def test_withheld_caller(agi_server: RunningServer) -> None:
    for withheld in ("anonymous", "unknown", ""):
        call = agi_call(agi_server.port, "caller_lookup", callerid=withheld)
        assert call.channel["AK_CALLER_E164"] == ""
        assert call.channel["AK_CITIZEN_ID"] == ""
        assert call.channel["AK_LANG"] == "tr"


def test_caller_id_with_bad_bytes_is_rejected_not_altered(agi_server: RunningServer) -> None:
    # Dropping the two bad bytes (panoramisk's errors='ignore') would give Ayşe's number.
    block = headers_block("caller_lookup", callerid="@@").replace(b"@@", b"0505\xff\xfe3618877")
    call = agi_call(agi_server.port, "caller_lookup", raw_headers=block)
    assert call.channel["AK_CALLER_E164"] == ""
    assert call.channel["AK_CITIZEN_ID"] == ""
    # The server is fine afterwards.
    assert agi_call(agi_server.port, "caller_lookup").channel["AK_CALLER_E164"] == AYSE


def test_values_are_quoted_so_asterisk_reads_them_back_exactly(
    agi_server: RunningServer,
) -> None:
    call = agi_call(agi_server.port, "caller_lookup", callerid=QUOTED)
    assert 'SET VARIABLE AK_CITIZEN_NAME "Ali \\"Deli\\" Back\\\\slash"' in call.commands
    assert call.channel["AK_CITIZEN_NAME"] == 'Ali "Deli" Back\\slash'
    assert call.channel["CALLERID(name)"] == 'Ali "Deli" Back\\slash'


def test_quote_strips_line_breaks_and_control_characters() -> None:
    quoted = quote('a\nSET VARIABLE X "1"\r\x00b')
    assert "\n" not in quoted and "\r" not in quoted and "\x00" not in quoted
    assert asterisk_parse_args(f"SET VARIABLE V {quoted}") == [
        "SET",
        "VARIABLE",
        "V",
        'aSET VARIABLE X "1"b',
    ]
    assert asterisk_parse_args('SET VARIABLE V ""') == ["SET", "VARIABLE", "V", ""]


def test_database_error_does_not_stop_the_server(
    start_server: Callable[..., RunningServer], agi_engine: Engine
) -> None:
    real = make_session_factory(agi_engine)
    failures = [True]

    def flaky() -> Session:
        if failures and failures.pop():
            raise OperationalError("SELECT 1", {}, Exception("database is unreachable"))
        return real()

    server = start_server(session_factory=flaky)
    broken = agi_call(server.port, "caller_lookup", callerid="0505 361 88 77")
    # Treated as an unknown caller; the number is still known; the call goes on.
    assert broken.channel["AK_CALLER_E164"] == AYSE
    assert broken.channel["AK_CITIZEN_ID"] == ""
    assert broken.channel["AK_PRIORITY"] == "0"
    healed = agi_call(server.port, "caller_lookup", callerid="0505 361 88 77")
    assert healed.channel["AK_CITIZEN_ID"] == str(citizen_id_by_phone(agi_engine, AYSE))


def test_unreachable_postgresql_still_answers_the_call(
    start_server: Callable[..., RunningServer],
) -> None:
    dead = create_engine(
        "postgresql+psycopg://acikkapi:x@127.0.0.1:1/none", connect_args={"connect_timeout": 5}
    )
    server = start_server(session_factory=make_session_factory(dead), db_timeout=1.0)
    call = agi_call(server.port, "caller_lookup", callerid=JOHN)
    assert call.channel["AK_CALLER_E164"] == JOHN
    assert call.channel["AK_CITIZEN_ID"] == ""
    dead.dispose()


def test_slow_database_does_not_hold_the_call(
    start_server: Callable[..., RunningServer], agi_engine: Engine
) -> None:
    real = make_session_factory(agi_engine)
    released = threading.Event()

    def stuck() -> Session:
        released.wait(30)  # the database answers only after the test has its reply
        return real()

    server = start_server(session_factory=stuck, db_timeout=0.3)
    try:
        # The reply arrives while the database is still stuck: the call was not held.
        call = agi_call(server.port, "caller_lookup", callerid=JOHN, timeout=10.0)
        assert not released.is_set()
        assert call.channel["AK_CITIZEN_ID"] == ""
        assert call.channel["AK_CALLER_E164"] == JOHN
    finally:
        released.set()


def test_concurrent_calls_are_served_in_parallel(agi_server: RunningServer) -> None:
    numbers = [AYSE, JOHN, GULSUM, SHARED_LANDLINE, "anonymous"] * 8
    with ThreadPoolExecutor(16) as pool:
        calls = list(
            pool.map(lambda n: agi_call(agi_server.port, "caller_lookup", callerid=n), numbers)
        )
    for number, call in zip(numbers, calls, strict=True):
        assert call.channel["AK_CALLER_E164"] == ("" if number == "anonymous" else number)


# -- protocol robustness ---------------------------------------------------------------------


def test_garbage_connections_do_not_hurt_the_server(agi_server: RunningServer) -> None:
    port = agi_server.port
    # Closed before the headers ended (panoramisk 1.4 would spin forever on this).
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"agi_network: yes\n")
    # Oversized header block: closed by the server.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(b"agi_x: " + b"a" * (MAX_HEADER_BYTES * 2))
        assert sock.recv(10) == b""
    # Unknown route: no command, connection closed.
    assert agi_call(port, "no_such_route").commands == []
    # A caller who hangs up while we talk.
    assert agi_call(port, "survey", digits=[HANGUP]).hung_up
    # ...and the next caller is served normally.
    assert agi_call(port, "caller_lookup").channel["AK_CALLER_E164"] == AYSE


def test_graceful_stop_lets_an_in_flight_call_finish(
    start_server: Callable[..., RunningServer],
) -> None:
    server = start_server()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(headers_block("caller_lookup"))
        stream = sock.makefile("rb")
        assert stream.readline() == b"GET VARIABLE AK_LANG\n"  # the call is in flight
        stopper = threading.Thread(target=server.stop)
        stopper.start()
        time.sleep(0.3)
        with socket.socket() as probe:  # no new calls are accepted
            assert probe.connect_ex(("127.0.0.1", server.port)) != 0
        sock.sendall(b"200 result=0\n")
        replies = 0
        while line := stream.readline():
            assert line.startswith(b"SET VARIABLE ")
            sock.sendall(b"200 result=1\n")
            replies += 1
        assert replies == 7
        stopper.join(10)


# -- callback_request ------------------------------------------------------------------------


def _tasks(engine: Engine, call_id: str) -> list[CallbackTask]:
    with Session(engine) as session:
        return list(session.scalars(select(CallbackTask).where(CallbackTask.call_id == call_id)))


def test_callback_request_creates_one_task_per_call_and_reason(
    agi_server: RunningServer, agi_engine: Engine
) -> None:
    variables = {"CALL_ID": "cb-1.1", "AK_CALLER_E164": JOHN, "AK_LANG": "en"}
    first = agi_call(
        agi_server.port, "callback_request", variables=variables, agi_arg_1="ivr_request"
    )
    again = agi_call(
        agi_server.port, "callback_request", variables=variables, agi_arg_1="ivr_request"
    )
    task_id = first.channel["AK_CALLBACK_ID"]
    assert task_id.isdigit() and again.channel["AK_CALLBACK_ID"] == task_id
    assert first.set_commands == [f'SET VARIABLE AK_CALLBACK_ID "{task_id}"']
    [task] = _tasks(agi_engine, "cb-1.1")
    assert task.reason is CallbackReason.IVR_REQUEST and task.status is CallbackStatus.PENDING
    assert task.phone_e164 == JOHN and task.language.value == "en"
    assert task.citizen_id == citizen_id_by_phone(agi_engine, JOHN)
    assert task.due_at == FIXED_NOW


def test_callback_request_falls_back_to_the_caller_id_and_uniqueid(
    agi_server: RunningServer, agi_engine: Engine
) -> None:
    call = agi_call(
        agi_server.port,
        "callback_request",
        callerid="0532 111 22 33",
        agi_arg_1="out_of_hours",
        agi_uniqueid="cb-2.1",
    )
    assert call.channel["AK_CALLBACK_ID"].isdigit()
    [task] = _tasks(agi_engine, "cb-2.1")
    assert task.phone_e164 == "+905321112233" and task.phone_raw == "0532 111 22 33"


def test_withheld_caller_gets_no_callback(agi_server: RunningServer, agi_engine: Engine) -> None:
    call = agi_call(
        agi_server.port,
        "callback_request",
        callerid="anonymous",
        variables={"CALL_ID": "cb-3.1", "AK_CALLER_E164": ""},
        agi_arg_1="abandoned",
    )
    assert call.set_commands == ['SET VARIABLE AK_CALLBACK_ID ""']
    assert _tasks(agi_engine, "cb-3.1") == []
    bad_reason = agi_call(
        agi_server.port, "callback_request", variables={"CALL_ID": "cb-3.2"}, agi_arg_1="later"
    )
    assert bad_reason.channel["AK_CALLBACK_ID"] == ""


# -- survey ----------------------------------------------------------------------------------


def _answers(engine: Engine, call_id: str) -> dict[str, int]:
    with Session(engine) as session:
        rows = session.execute(
            select(SurveyQuestion.code, SurveyAnswer.answer)
            .join(SurveyQuestion, SurveyQuestion.id == SurveyAnswer.question_id)
            .where(SurveyAnswer.call_id == call_id)
        )
        return {code: answer for code, answer in rows}


def test_survey_asks_retries_and_stores(agi_server: RunningServer, agi_engine: Engine) -> None:
    call = agi_call(
        agi_server.port,
        "survey",
        variables={"CALL_ID": "sv-1.1"},
        digits=["7", "5", None, "1", "3"],
        agi_arg_1="",
    )
    assert call.commands == [
        "GET VARIABLE CALL_ID",
        "GET DATA acikkapi/survey-satisfaction 5000 1",
        'STREAM FILE acikkapi/invalid-choice ""',
        "GET DATA acikkapi/survey-satisfaction 5000 1",
        "GET DATA acikkapi/survey-solved 5000 1",
        'STREAM FILE acikkapi/invalid-choice ""',
        "GET DATA acikkapi/survey-solved 5000 1",
        "GET DATA acikkapi/survey-courtesy 5000 1",
        'SET VARIABLE AK_SURVEY_RESULT "complete"',
    ]
    assert _answers(agi_engine, "sv-1.1") == {"satisfaction": 5, "solved": 1, "courtesy": 3}


def test_survey_gives_up_after_two_retries_and_reports_partial(
    agi_server: RunningServer, agi_engine: Engine
) -> None:
    call = agi_call(
        agi_server.port,
        "survey",
        variables={"CALL_ID": "sv-2.1"},
        digits=["4", "9", "9", "9", None, None, None],
    )
    assert call.commands.count("GET DATA acikkapi/survey-solved 5000 1") == 3
    assert call.channel["AK_SURVEY_RESULT"] == "partial"
    assert _answers(agi_engine, "sv-2.1") == {"satisfaction": 4}
    silent = agi_call(agi_server.port, "survey", variables={"CALL_ID": "sv-2.2"}, digits=[])
    assert silent.channel["AK_SURVEY_RESULT"] == "failed"


def test_survey_keeps_answers_given_before_a_hangup(
    agi_server: RunningServer, agi_engine: Engine
) -> None:
    call = agi_call(
        agi_server.port, "survey", variables={"CALL_ID": "sv-3.1"}, digits=["2", HANGUP]
    )
    assert call.hung_up and "AK_SURVEY_RESULT" not in call.channel
    assert _answers(agi_engine, "sv-3.1") == {"satisfaction": 2}
