"""Malformed, oversized and non-UTF-8 input: no exception escapes, memory stays bounded,
bad frames are counted (never repaired), an oversized frame closes the connection and a new
connection parses valid frames again."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ami_listener.client import BoundedAMIProtocol
from ami_listener.framing import FrameDecoder, chanvar_key, parse_frame

MAX = 4096
VALID = (
    b"Event: Newchannel\r\nPrivilege: call,all\r\nChannel: PJSIP/trunk-00000001\r\n"
    b"CallerIDNum: 05321234567\r\nUniqueid: 1.1\r\nChanVariable: CALL_ID=1.1\r\n\r\n"
)


class FakeTransport:
    def __init__(self) -> None:
        self.aborted = False
        self.written: list[bytes] = []

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        self.aborted = True

    def write(self, data: bytes) -> None:
        self.written.append(data)


def protocol(max_frame: int = MAX) -> tuple[BoundedAMIProtocol, list[Any], FakeTransport]:
    events: list[Any] = []
    proto = BoundedAMIProtocol(events.append, None, max_frame)
    transport = FakeTransport()
    proto.connection_made(transport)
    return proto, events, transport


def test_valid_frame_parsed_with_chanvars() -> None:
    proto, events, transport = protocol()
    proto.data_received(b"Asterisk Call Manager/9.0.0\r\n" + VALID)
    assert proto.decoder.banner == "Asterisk Call Manager/9.0.0"
    assert len(events) == 1 and events[0]["CallerIDNum"] == "05321234567"
    assert events[0][chanvar_key("CALL_ID")] == "1.1"
    assert not transport.aborted


def test_invalid_utf8_caller_id_is_rejected_not_altered() -> None:
    proto, events, _ = protocol()
    bad = VALID.replace(b"05321234567", b"0532\xff\xfe123")
    proto.data_received(bad)
    assert events == []
    assert proto.decoder.stats.bad_encoding == 1
    proto.data_received(VALID)  # the stream goes on
    assert [e["CallerIDNum"] for e in events] == ["05321234567"]
    assert all(e.get("CallerIDNum") != "0532123" for e in events)


def test_8_mib_without_terminator_closes_connection_with_bounded_buffer() -> None:
    proto, events, transport = protocol(64 * 1024)
    chunk = b"X" * (1024 * 1024)
    for _ in range(8):
        proto.data_received(chunk)
        assert len(proto.decoder.buffer) <= 64 * 1024
        if transport.aborted:
            break
    assert transport.aborted
    assert proto.decoder.stats.overflows == 1
    assert events == []
    # A new connection (a new protocol) parses valid frames again.
    proto2, events2, transport2 = protocol(64 * 1024)
    proto2.data_received(VALID)
    assert len(events2) == 1 and not transport2.aborted


def test_single_8_mib_read_is_bounded() -> None:
    decoder = FrameDecoder(64 * 1024)
    result = decoder.feed(b"Event: X\r\n" + b"A" * (8 * 1024 * 1024))
    assert result.overflow and len(decoder.buffer) == 0 and decoder.closed
    assert decoder.feed(VALID).frames == []  # closed: the connection must be replaced


def test_frames_split_at_every_byte_boundary() -> None:
    stream = VALID * 3
    for cut in range(1, len(VALID) + 5):
        decoder = FrameDecoder(MAX)
        frames = decoder.feed(stream[:cut]).frames + decoder.feed(stream[cut:]).frames
        assert len(frames) == 3, cut


def test_control_characters_and_headerless_frames_are_counted() -> None:
    decoder = FrameDecoder(MAX)
    result = decoder.feed(b"garbage without colon\r\n\r\nEvent: X\r\nA: b\x00c\r\n\r\n" + VALID)
    assert len(result.frames) == 1
    assert decoder.stats.malformed == 2
    assert parse_frame("Response: Success\r\nActionID: 1") == {
        "Response": "Success",
        "ActionID": "1",
    }


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=3 * MAX), max_size=12))
def test_fuzz_random_bytes(chunks: list[bytes]) -> None:
    proto, events, transport = protocol()
    for chunk in chunks:
        proto.data_received(chunk)  # must never raise
        assert len(proto.decoder.buffer) <= MAX
    stats = proto.decoder.stats
    assert stats.frames == len(events)
    for event in events:
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in event.items())
    if transport.aborted:
        assert stats.overflows == 1
    fresh, fresh_events, _ = protocol()
    fresh.data_received(VALID)
    assert len(fresh_events) == 1


frame_lines = st.lists(
    st.tuples(
        st.text(
            alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=":"),
            min_size=1,
            max_size=20,
        ),
        st.text(max_size=60),
    ),
    max_size=10,
)


@settings(max_examples=300, deadline=None)
@given(frame_lines, st.binary(max_size=40), st.integers(min_value=1, max_value=64))
def test_fuzz_structured_frames_with_bad_bytes(
    headers: list[tuple[str, str]], junk: bytes, split: int
) -> None:
    body = b"Event: Fuzz\r\n" + b"".join(
        f"{k}: {v}".encode("utf-8", "surrogatepass") + b"\r\n" for k, v in headers
    )
    stream = body + junk + b"\r\n\r\n" + VALID
    proto, events, _transport = protocol()
    for i in range(0, len(stream), split):
        proto.data_received(stream[i : i + split])
        assert len(proto.decoder.buffer) <= MAX
    stats = proto.decoder.stats
    assert stats.frames + stats.bad_encoding + stats.malformed >= 1
    assert stats.frames == len(events)
    assert events and events[-1]["CallerIDNum"] == "05321234567"
    for event in events:
        for value in event.values():
            value.encode("utf-8")  # only valid text ever reaches handlers


def reference_frames(stream: bytes) -> tuple[list[dict[str, str]], int, int]:
    """The plain per-frame definition the decoder must match: split at each CRLFCRLF,
    strict UTF-8 per frame, :func:`parse_frame` (which refuses control characters)."""
    frames, bad, malformed = [], 0, 0
    pieces = stream.split(b"\r\n\r\n")
    for raw in pieces[:-1]:  # the last piece has no terminator yet
        raw = raw.lstrip(b"\r\n")
        if not raw:
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            bad += 1
            continue
        frame = parse_frame(text)
        if frame is None:
            malformed += 1
        else:
            frames.append(frame)
    return frames, bad, malformed


tricky = st.sampled_from(
    [
        "\r",
        "\n",
        "\r\r\n",
        "\r\n\n",
        "\t",
        "\x00",
        "\x1b",
        "\x7f",
        "\x85",
        "\xa0",
        "\u2028",
        "\u200b",
        "ş",
        ": ",
        "ChanVariable: X=1",
        "\r\n",
        "\r\n\r\n",
    ]
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.lists(st.one_of(tricky, st.text(max_size=12)), max_size=8).map("".join),
        max_size=6,
    ),
    st.binary(max_size=6),
    st.integers(min_value=1, max_value=300),
)
def test_block_decoding_matches_the_per_frame_definition(
    bodies: list[str], junk: bytes, split: int
) -> None:
    """Reads decoded a block at a time accept and refuse exactly what frame-by-frame
    decoding does (control characters, lone CR/LF, invalid UTF-8), for any read size."""
    stream = b"".join(
        b"Event: Fuzz\r\nA: " + body.encode("utf-8", "surrogatepass") + b"\r\n\r\n"
        for body in bodies
    )
    stream = stream + junk + b"\r\n\r\n" + VALID
    expected, bad, malformed = reference_frames(stream)
    decoder = FrameDecoder(64 * 1024)
    got = []
    for i in range(0, len(stream), split):
        got += decoder.feed(stream[i : i + split]).frames
    assert got == expected
    assert (decoder.stats.bad_encoding, decoder.stats.malformed) == (bad, malformed)
    assert decoder.stats.frames == len(expected)
