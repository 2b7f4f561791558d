"""Replaying recorded AMI transcripts (tests, benchmarks, ``acikkapi ami-listener replay``).

A transcript is raw AMI text exactly as Asterisk sent it (``Event: …\\r\\n…\\r\\n\\r\\n``, an
optional ``Asterisk Call Manager/…`` banner first); files with LF line ends are accepted. It
goes through the same decoder and tracker as the live stream, so a real recording drops in.
"""

from __future__ import annotations

from pathlib import Path

from acikkapi.db import engine_from_settings, make_session_factory, unit_of_work
from acikkapi.settings import Settings
from ami_listener.call_tracker import CallTracker, TrackerConfig
from ami_listener.framing import AmiEvent, iter_frames, transcript_bytes
from ami_listener.screenpop import ScreenPopPublisher
from ami_listener.writer import FactWriter
from services.call_records import CallFact

CHUNK = 4096  # feed in network-sized pieces so frames straddle reads as they do live


def load_events(path: Path) -> list[AmiEvent]:
    data = transcript_bytes(path.read_bytes())
    chunks = (data[i : i + CHUNK] for i in range(0, len(data), CHUNK))
    return list(iter_frames(chunks))


def facts_from_events(
    events: list[AmiEvent], config: TrackerConfig | None = None
) -> list[CallFact]:
    tracker = CallTracker(config)
    facts: list[CallFact] = []
    for event in events:
        facts.extend(tracker.feed(event))
    return facts


def facts_from_transcript(path: Path, config: TrackerConfig | None = None) -> list[CallFact]:
    return facts_from_events(load_events(path), config)


async def replay_into_database(path: Path, settings: Settings, publish: bool = False) -> int:
    facts = facts_from_transcript(path)
    engine = engine_from_settings(settings)
    factory = make_session_factory(engine)
    publisher = ScreenPopPublisher(settings.redis_url) if publish else None
    writer = FactWriter(lambda: unit_of_work(factory), publisher)
    try:
        for start in range(0, len(facts), writer.batch_max):
            await writer.apply_now(list(facts[start : start + writer.batch_max]))
    finally:
        if publisher is not None:
            await publisher.close()
        engine.dispose()
    return len(facts)
