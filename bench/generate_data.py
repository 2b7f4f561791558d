"""Generate a large Açık Kapı data set in PostgreSQL for the benchmarks (not a test).

Issue 2 target:
    "Benchmark bench/ (not a test): generate 1,000,000 citizens and 5,000,000 tickets in
    PostgreSQL; measure citizen lookup by phone and by TC through the service layer
    (p50/p99; target p99 ≤ 2 ms) and sustained ticket opening through the one intake path
    with dedup (target ≥ 200 tickets/s on 2 cores); print the figures and keep the latest
    in docs/benchmarks.md."

This script builds the data; ``bench/intake_bench.py`` measures against it.

What it does, against a dedicated database (``BENCH_DATABASE_URL``, default
``postgresql+psycopg://acikkapi:acikkapi@127.0.0.1:5432/acikkapi_bench``; created when
missing):

1. drops and recreates the schema from the models (``Base.metadata.drop_all/create_all``);
2. loads holidays, catalogue and demo data through ``services.catalogue_loader`` (when that
   module is not available yet, a small built-in catalogue is used and a warning printed);
3. generates ``1,000,000 × scale`` citizens (valid, unique TC numbers for 97 %, phone-only
   for 3 %), about 1.3 Turkish mobile numbers each (E.164; a few thousand numbers shared
   by chance, as in life), ``5,000,000 × scale`` tickets over the last two years (~10 %
   open and recent, the rest resolved or closed; random types, channels, neighbourhoods,
   addresses) with their reference codes (``services.reference_code.encode``) and one
   ``ticket_contacts`` row each. Rows are produced in Python and streamed with
   PostgreSQL ``COPY``.
4. With the default ``--load-mode deferred``, the secondary indexes, unique constraints and
   foreign keys of the four big tables are dropped after ``create_all`` and re-created
   after loading from the exact definitions PostgreSQL reported
   (``pg_get_indexdef``/``pg_get_constraintdef``); the script then checks that the final
   schema is identical to the one ``create_all`` produced. ``--load-mode indexes-first``
   loads into the fully indexed schema instead (slower; kept for comparison).
5. sets the id sequences, runs ``VACUUM ANALYZE`` and prints the timings. The timings are
   also stored as a JSON comment on the database so ``intake_bench.py --write-docs`` can
   report them.

Deadlines of generated tickets are approximations (working hours ≈ ×4.2 calendar hours);
the intake benchmark computes real ones through the service.

Usage:
    .venv/bin/python bench/generate_data.py             # full size (≈ 10-20 min on 2 cores)
    .venv/bin/python bench/generate_data.py --scale 0.01  # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import phonenumbers
import psycopg
from _common import DEFAULT_URL, ROOT, libpq_dsn
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

import models
from acikkapi.db import make_engine, make_session_factory
from services import reference_code
from services.turkish_text import fold_key

BIG_TABLES = ("citizens", "citizen_phones", "tickets", "ticket_contacts")
FULL_CITIZENS = 1_000_000
FULL_TICKETS = 5_000_000
CHUNK_ROWS = 20_000

FIRST_NAMES = [
    "Ahmet",
    "Mehmet",
    "Mustafa",
    "Ali",
    "Hüseyin",
    "Hasan",
    "İbrahim",
    "İsmail",
    "Osman",
    "Yusuf",
    "Murat",
    "Ömer",
    "Ramazan",
    "Halil",
    "Süleyman",
    "Abdullah",
    "Mahmut",
    "Recep",
    "Salih",
    "Fatih",
    "Kadir",
    "Emre",
    "Hakan",
    "Burak",
    "Serkan",
    "Kemal",
    "Cem",
    "Can",
    "Deniz",
    "Eren",
    "Kaan",
    "Onur",
    "Tolga",
    "Uğur",
    "Volkan",
    "Yasin",
    "Zeki",
    "Şükrü",
    "Çağrı",
    "Gökhan",
    "Fatma",
    "Ayşe",
    "Emine",
    "Hatice",
    "Zeynep",
    "Elif",
    "Meryem",
    "Şerife",
    "Sultan",
    "Zehra",
    "Hanife",
    "Merve",
    "Havva",
    "Zeliha",
    "Esra",
    "Fadime",
    "Özlem",
    "Hülya",
    "Yasemin",
    "Leyla",
    "Gül",
    "Derya",
    "Ebru",
    "Sibel",
    "Aslı",
    "Büşra",
    "Cansu",
    "Damla",
    "Gizem",
    "İrem",
    "Kübra",
    "Nur",
    "Pınar",
    "Seda",
    "Tuğba",
    "Yağmur",
    "Şule",
    "Özge",
    "Çiğdem",
    "Ilgın",
    "Işıl",
]
LAST_NAMES = [
    "Yılmaz",
    "Kaya",
    "Demir",
    "Şahin",
    "Çelik",
    "Yıldız",
    "Yıldırım",
    "Öztürk",
    "Aydın",
    "Özdemir",
    "Arslan",
    "Doğan",
    "Kılıç",
    "Aslan",
    "Çetin",
    "Kara",
    "Koç",
    "Kurt",
    "Özkan",
    "Şimşek",
    "Polat",
    "Özcan",
    "Korkmaz",
    "Çakır",
    "Erdoğan",
    "Yavuz",
    "Can",
    "Acar",
    "Şen",
    "Aktaş",
    "Güler",
    "Yalçın",
    "Güneş",
    "Bozkurt",
    "Bulut",
    "Keskin",
    "Ünal",
    "Turan",
    "Gül",
    "Özer",
    "Işık",
    "Kaplan",
    "Avcı",
    "Sarı",
    "Tekin",
    "Taş",
    "Köse",
    "Yüksel",
    "Ateş",
    "Aksoy",
    "Uçar",
    "Ekinci",
    "Karaca",
    "Sönmez",
    "Uysal",
    "Altun",
    "Tunç",
    "Kocabaş",
    "Gündoğdu",
    "İnce",
    "Çınar",
    "Erdem",
    "Akın",
    "Bayram",
    "Duman",
    "Ilıca",
    "Oral",
    "Tan",
    "Uzun",
]
STREETS = [
    "Atatürk Caddesi",
    "Cumhuriyet Caddesi",
    "İstiklal Sokak",
    "Gazi Bulvarı",
    "Lale Sokak",
    "Menekşe Sokak",
    "Çınar Sokak",
    "Okul Sokak",
    "Cami Sokak",
    "Fatih Caddesi",
    "Mimar Sinan Sokak",
    "Gül Sokak",
    "Şehit Er Sokak",
    "Zafer Caddesi",
    "Barış Sokak",
    "Yeşil Sokak",
    "Pınar Sokak",
    "Kültür Caddesi",
    "Orhan Gazi Caddesi",
    "Yunus Emre Sokak",
    "Akasya Sokak",
    "Papatya Sokak",
    "Dere Sokak",
    "Park Sokak",
]
DESCRIPTIONS = (
    "Sokak lambası yanmıyor, akşamları çok karanlık.",
    "Çöp konteyneri iki gündür boşaltılmadı.",
    "Kaldırımda çökme var, yaşlılar için tehlikeli.",
    "Parktaki salıncak kırık.",
    "Yolda büyük bir çukur oluştu.",
    "Sokak köpekleri sabahları okul önünde toplanıyor.",
    "Su borusu patlamış, yol su altında.",
    "Gürültü şikayeti: gece inşaat çalışması yapılıyor.",
    "Ağaç dalları elektrik tellerine değiyor.",
    "Otobüs durağındaki bank kırık.",
    "Kaldırım işgali var, yayalar yoldan yürüyor.",
    "Rögar kapağı yerinden çıkmış.",
    "Yağmur suyu ızgarası tıkalı.",
    "Sosyal yardım başvurumun durumunu öğrenmek istiyorum.",
    "Cenaze hizmeti hakkında bilgi almak istiyorum.",
    "Pazar yeri temizliği yapılmadı.",
    "Duvar yazıları temizlensin.",
    "Engelli rampası yok, tekerlekli sandalye ile girilemiyor.",
)
RESOLUTIONS = (
    "Ekip yönlendirildi, sorun giderildi.",
    "Arıza onarıldı.",
    "Vatandaş bilgilendirildi.",
    "İlgili kuruma iletildi ve kapatıldı.",
    "Yerinde inceleme yapıldı, gerekli çalışma tamamlandı.",
)
OPEN_STATUSES = ("new", "forwarded", "in_progress", "waiting_on_citizen")
CHANNELS = (
    ("phone", 40),
    ("desk", 12),
    ("web", 20),
    ("sms", 8),
    ("email", 6),
    ("social_media", 4),
    ("petition", 4),
    ("field_team", 3),
    ("mayors_office", 1),
    ("switchboard", 2),
)
PHONE_CHANNELS = frozenset({"phone", "sms", "switchboard"})


# --------------------------------------------------------------------------------------------
# helpers


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class Timer:
    def __init__(self) -> None:
        self.steps: dict[str, float] = {}
        self.started = time.perf_counter()

    def step(self, name: str, fn: Callable[[], object]) -> object:
        t0 = time.perf_counter()
        log(f"{name} ...")
        result = fn()
        self.steps[name] = time.perf_counter() - t0
        log(f"{name}: {self.steps[name]:.1f} s")
        return result

    @property
    def total(self) -> float:
        return time.perf_counter() - self.started


def ensure_database(url: str) -> None:
    """Create the bench database when missing (connecting to the ``acikkapi`` database)."""
    name = make_url(url).database
    with psycopg.connect(libpq_dsn(url, "acikkapi"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
            log(f"created database {name}")


def tc_from_base(base: int) -> str:
    """11-digit TC number from its first nine digits (first digit non-zero)."""
    d = [int(c) for c in str(base)]
    d10 = (7 * (d[0] + d[2] + d[4] + d[6] + d[8]) - (d[1] + d[3] + d[5] + d[7])) % 10
    d11 = (sum(d) + d10) % 10
    return f"{base}{d10}{d11}"


def mobile_prefixes() -> list[str]:
    """Turkish mobile operator prefixes (5xx) that ``phonenumbers`` accepts as mobile."""
    good = []
    for p in range(500, 560):
        ok = True
        for sample in ("1234567", "0000000", "9999999", "5550101"):
            n = phonenumbers.parse(f"+90{p}{sample}")
            if not (
                phonenumbers.is_valid_number(n)
                and phonenumbers.number_type(n) == phonenumbers.PhoneNumberType.MOBILE
            ):
                ok = False
                break
        if ok:
            good.append(str(p))
    if not good:
        raise SystemExit("no Turkish mobile prefix validates with phonenumbers")
    return good


def raw_form(e164: str, variant: int) -> str:
    """A way people write the number (as a channel would hand it in)."""
    n = e164[3:]  # 5321234567
    if variant == 0:
        return f"0{n[:3]} {n[3:6]} {n[6:8]} {n[8:]}"
    if variant == 1:
        return f"0{n}"
    if variant == 2:
        return f"+90 {n[:3]} {n[3:6]} {n[6:8]} {n[8:]}"
    return f"({n[:3]}) {n[3:6]} {n[6:]}"


def weighted_pool(items: list[tuple[object, int]], size: int = 1000) -> list[object]:
    total = sum(w for _, w in items)
    pool: list[object] = []
    for item, w in items:
        pool.extend([item] * max(1, round(size * w / total)))
    return pool


class Clock:
    """Fast text timestamps: offsets in seconds from ``base`` (midnight UTC) to ``…+00``."""

    def __init__(self, base: datetime, days: int) -> None:
        self.base = base
        self.days = [(base + timedelta(days=i)).strftime("%Y-%m-%d ") for i in range(days)]
        self.times = [
            f"{h:02d}:{m:02d}:{s:02d}+00" for h in range(24) for m in range(60) for s in range(60)
        ]

    def fmt(self, offset: int) -> str:
        return self.days[offset // 86400] + self.times[offset % 86400]


# --------------------------------------------------------------------------------------------
# reference data


def load_reference_data(factory, now: datetime) -> str:  # type: ignore[no-untyped-def]
    try:
        from services import catalogue_loader  # type: ignore[attr-defined]
    except ImportError as exc:
        log(f"WARNING: services.catalogue_loader not importable ({exc}); using built-in catalogue")
        with factory() as session:
            _fallback_catalogue(session, now)
            session.commit()
        return "built-in fallback catalogue (services.catalogue_loader missing)"
    with factory() as session:
        catalogue_loader.load_holidays(session)
        session.commit()
    with factory() as session:
        catalogue_loader.load_catalogue(session, now)
        session.commit()
    with factory() as session:
        catalogue_loader.load_demo(session, now)
        session.commit()
    return "services.catalogue_loader (holidays, catalogue, demo)"


def _fallback_catalogue(session, now: datetime) -> None:  # type: ignore[no-untyped-def]
    """Minimal catalogue so the bench can run before the real loader exists."""
    from models import (
        Department,
        ExternalInstitution,
        Holiday,
        LegalClock,
        Neighbourhood,
        Role,
        SlaUnit,
        StaffUser,
        TicketKind,
        TicketType,
    )

    rows = json.loads((ROOT / "acikkapi/data/holidays_tr.json").read_text(encoding="utf-8"))
    for r in rows:
        session.add(
            Holiday(
                day=date.fromisoformat(r["date"]),
                name_tr=r["name_tr"],
                name_en=r["name_en"],
                half_day=r["half_day"],
            )
        )
    depts = {}
    for code, tr, en in (
        ("koordinasyon", "Açık Kapı Koordinasyon", "Open Door Coordination"),
        ("fen", "Fen İşleri Müdürlüğü", "Public Works"),
        ("temizlik", "Temizlik İşleri Müdürlüğü", "Sanitation"),
        ("park", "Park ve Bahçeler Müdürlüğü", "Parks and Gardens"),
        ("zabita", "Zabıta Müdürlüğü", "Municipal Police"),
        ("sosyal", "Sosyal Yardım İşleri Müdürlüğü", "Social Aid"),
        ("veteriner", "Veteriner İşleri Müdürlüğü", "Veterinary Services"),
        ("imar", "İmar ve Şehircilik Müdürlüğü", "Zoning"),
    ):
        depts[code] = Department(code=code, name_tr=tr, name_en=en)
        session.add(depts[code])
    water = ExternalInstitution(
        code="aski",
        name_tr="Su ve Kanalizasyon İdaresi",
        name_en="Water and Sewerage Authority",
        phone="185",
    )
    power = ExternalInstitution(
        code="edas",
        name_tr="Elektrik Dağıtım A.Ş.",
        name_en="Electricity Distribution",
        phone="186",
    )
    session.add_all([water, power])
    session.flush()
    types = [
        ("genel", "Genel başvuru", "General", "request", "koordinasyon", None, 24, "none"),
        ("yol_cukur", "Yolda çukur", "Pothole", "complaint", "fen", None, 40, "none"),
        ("kaldirim", "Kaldırım onarımı", "Pavement repair", "request", "fen", None, 80, "none"),
        (
            "cop",
            "Çöp toplanmadı",
            "Rubbish not collected",
            "complaint",
            "temizlik",
            None,
            8,
            "none",
        ),
        (
            "konteyner",
            "Konteyner talebi",
            "Container request",
            "request",
            "temizlik",
            None,
            40,
            "none",
        ),
        ("park_bakim", "Park bakımı", "Park maintenance", "request", "park", None, 80, "none"),
        ("agac", "Ağaç budama", "Tree pruning", "request", "park", None, 120, "none"),
        ("gurultu", "Gürültü şikayeti", "Noise complaint", "complaint", "zabita", None, 8, "none"),
        (
            "isgal",
            "Kaldırım işgali",
            "Pavement obstruction",
            "complaint",
            "zabita",
            None,
            24,
            "none",
        ),
        ("sosyal_yardim", "Sosyal yardım", "Social aid", "request", "sosyal", None, 80, "none"),
        (
            "sokak_hayvani",
            "Sokak hayvanı",
            "Stray animal",
            "request",
            "veteriner",
            None,
            24,
            "none",
        ),
        (
            "imar_bilgi",
            "İmar bilgisi",
            "Zoning information",
            "information",
            "imar",
            None,
            120,
            "information_15_working_days",
        ),
        (
            "dilekce",
            "Dilekçe",
            "Petition",
            "request",
            "koordinasyon",
            None,
            160,
            "petition_30_days",
        ),
        ("oneri", "Öneri", "Suggestion", "suggestion", "koordinasyon", None, 160, "none"),
        ("su_ariza", "Su arızası", "Water fault", "complaint", None, water, 24, "none"),
        ("elektrik", "Elektrik arızası", "Power cut", "complaint", None, power, 24, "none"),
    ]
    for code, tr, en, kind, dept, inst, hours, legal in types:
        session.add(
            TicketType(
                code=code,
                name_tr=tr,
                name_en=en,
                default_kind=TicketKind(kind),
                department_id=depts[dept].id if dept else None,
                external_institution_id=inst.id if inst else None,
                sla_hours=hours,
                sla_unit=SlaUnit.WORKING_HOURS,
                legal_clock=LegalClock(legal),
            )
        )
    for i, name in enumerate(
        (
            "Atatürk Mahallesi",
            "Cumhuriyet Mahallesi",
            "Yenimahalle",
            "Fatih Mahallesi",
            "Gazi Mahallesi",
            "Barış Mahallesi",
            "Kocatepe Mahallesi",
            "Bahçelievler Mahallesi",
            "Esentepe Mahallesi",
            "Gülbahar Mahallesi",
            "Yıldıztepe Mahallesi",
            "Çamlık Mahallesi",
            "Pınarbaşı Mahallesi",
            "Kurtuluş Mahallesi",
            "İstiklal Mahallesi",
            "Şirinevler Mahallesi",
            "Güzeltepe Mahallesi",
            "Aydınlıkevler Mahallesi",
            "Emek Mahallesi",
            "Zafer Mahallesi",
        )
    ):
        session.add(
            Neighbourhood(
                name=name,
                area="kuzey" if i % 2 else "güney",
                latitude=39.9 + i * 0.003,
                longitude=32.85 + i * 0.003,
            )
        )
    for i in range(1, 21):
        session.add(
            StaffUser(
                username=f"agent{i:02d}",
                full_name=f"{FIRST_NAMES[i]} {LAST_NAMES[i]}",
                staff_code=f"AK-{i:04d}",
                role=Role.AGENT if i <= 14 else Role.DESK_STAFF,
                department_id=depts["koordinasyon"].id,
                languages=["tr"],
                created_at=now,
            )
        )
    session.flush()


def reference_snapshot(engine) -> dict:  # type: ignore[no-untyped-def]
    """Catalogue facts the generator needs."""
    from models import Neighbourhood, StaffUser, TicketType

    factory = make_session_factory(engine)
    with factory() as session:
        types = [
            {
                "id": t.id,
                "kind": t.default_kind.value,
                "department_id": t.department_id,
                "external_institution_id": t.external_institution_id,
                "sla_hours": t.sla_hours,
                "working": t.sla_unit.value == "working_hours",
                "legal": t.legal_clock.value,
            }
            for t in session.scalars(select(TicketType).where(TicketType.is_active))
        ]
        neighbourhoods = [
            (n.id, n.latitude, n.longitude) for n in session.scalars(select(Neighbourhood))
        ]
        staff = [
            s.id
            for s in session.scalars(select(StaffUser).where(StaffUser.role != models.Role.SYSTEM))
        ]
        if not staff:
            staff = list(session.scalars(select(StaffUser.id)))
        existing_tc = set(
            session.scalars(
                select(models.Citizen.tc_number).where(models.Citizen.tc_number.is_not(None))
            )
        )
        offsets = {
            table: session.scalar(text(f"SELECT coalesce(max(id), 0) FROM {table}"))
            for table in BIG_TABLES
        }
    if not types or not staff:
        raise SystemExit("catalogue has no ticket types or no staff users: cannot generate")
    return {
        "types": types,
        "neighbourhoods": neighbourhoods,
        "staff": staff,
        "existing_tc": existing_tc,
        "offsets": offsets,
    }


# --------------------------------------------------------------------------------------------
# schema: deferred constraints and the identity check


def schema_snapshot(conn: psycopg.Connection) -> dict[str, list[tuple[str, str]]]:
    """Indexes and constraints of the big tables, as PostgreSQL defines them."""
    snap: dict[str, list[tuple[str, str]]] = {}
    for table in BIG_TABLES:
        idx = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename = %s ORDER BY indexname",
            (table,),
        ).fetchall()
        cons = conn.execute(
            "SELECT conname, contype::text || ':' || pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass ORDER BY conname",
            (table,),
        ).fetchall()
        snap[table] = [(n, d) for n, d in idx] + [(n, d) for n, d in cons]
    return snap


def drop_secondary(conn: psycopg.Connection) -> list[str]:
    """Drop FKs, unique constraints and plain indexes of the big tables; return the DDL
    that re-creates them (unique constraints first, then indexes, then foreign keys)."""
    uniques, indexes, fks = [], [], []
    for table in BIG_TABLES:
        for name, contype, definition in conn.execute(
            "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype IN ('f', 'u')",
            (table,),
        ).fetchall():
            ddl = f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'
            (fks if contype == "f" else uniques).append(ddl)
            conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, definition in conn.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = "
            "current_schema() AND i.tablename = %s AND NOT EXISTS (SELECT 1 FROM pg_constraint "
            "c WHERE c.conname = i.indexname AND c.conrelid = %s::regclass)",
            (table, table),
        ).fetchall():
            indexes.append(definition)
            conn.execute(f'DROP INDEX "{name}"')
    return uniques + indexes + fks


# --------------------------------------------------------------------------------------------
# row generation (text COPY format: tab separated, \N = NULL)

N = "\\N"


def copy_lines(conn: psycopg.Connection, table: str, columns: str, lines: Iterator[str]) -> int:
    count = 0
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        buf: list[str] = []
        for line in lines:
            buf.append(line)
            if len(buf) >= CHUNK_ROWS:
                copy.write("".join(buf))
                count += len(buf)
                buf.clear()
        if buf:
            copy.write("".join(buf))
            count += len(buf)
    return count


class Generator:
    def __init__(self, args: argparse.Namespace, ref: dict, now: datetime) -> None:
        self.rng = random.Random(args.seed)
        self.ref = ref
        self.n_citizens = max(100, round(FULL_CITIZENS * args.scale))
        self.n_tickets = max(500, round(FULL_TICKETS * args.scale))
        self.cit0 = ref["offsets"]["citizens"]
        self.phone0 = ref["offsets"]["citizen_phones"]
        self.tick0 = ref["offsets"]["tickets"]
        self.contact0 = ref["offsets"]["ticket_contacts"]
        self.now = now
        base = (now - timedelta(days=731)).replace(hour=0, minute=0, second=0, microsecond=0)
        self.clock = Clock(base, 731 + 400)
        self.span = int((now - base).total_seconds())
        self.prefixes = mobile_prefixes()
        self.first_phone: list[str] = []  # index: citizen number (0-based)
        self.tc_holder: list[bool] = []
        addresses = []
        for street in STREETS:
            for no in range(1, 61):
                addr = f"{street} No:{no}"
                addresses.append((addr, fold_key(addr)[:200]))
        self.addresses = addresses
        self.first_folded = [fold_key(n).replace(" ", "") for n in FIRST_NAMES]
        self.last_folded = [fold_key(n).replace(" ", "") for n in LAST_NAMES]

    # citizens and phones -------------------------------------------------------------------

    def _name(self, i: int) -> tuple[int, int]:
        return (i * 7 + i // 97) % len(FIRST_NAMES), (i * 13 + i // 71) % len(LAST_NAMES)

    def citizen_lines(self) -> Iterator[str]:
        rng = self.rng
        bases = rng.sample(range(100_000_000, 1_000_000_000), self.n_citizens + 1000)
        existing = self.ref["existing_tc"]
        tcs = [tc for tc in map(tc_from_base, bases) if tc not in existing]
        clock, span = self.clock, self.span
        for i in range(self.n_citizens):
            cid = self.cit0 + i + 1
            has_tc = rng.random() >= 0.03
            self.tc_holder.append(has_tc)
            fi, li = self._name(i)
            email = (
                f"{self.first_folded[fi]}.{self.last_folded[li]}{cid}@example.com"
                if rng.random() < 0.3
                else N
            )
            created = clock.fmt(rng.randrange(span))
            lang = "en" if rng.random() < 0.02 else "tr"
            groups = '["elderly"]' if rng.random() < 0.05 else "[]"
            dnc = "t" if rng.random() < 0.01 else "f"
            yield (
                f"{cid}\t{tcs[i] if has_tc else N}\t{FIRST_NAMES[fi]}\t{LAST_NAMES[li]}\t{email}"
                f"\t{lang}\tt\tt\tf\t{dnc}\t{groups}\t{created}\t{created}\n"
            )

    CITIZEN_COLUMNS = (
        "id, tc_number, first_name, last_name, email, preferred_language, consent_sms, "
        "consent_calls, consent_commercial, do_not_call, special_groups, created_at, updated_at"
    )

    def _mobile(self) -> str:
        return f"+90{self.rng.choice(self.prefixes)}{self.rng.randrange(10_000_000):07d}"

    def phone_lines(self) -> Iterator[str]:
        rng, clock, span = self.rng, self.clock, self.span
        pid = self.phone0
        for i in range(self.n_citizens):
            cid = self.cit0 + i + 1
            numbers = [self._mobile()]
            if rng.random() < 0.3:
                second = self._mobile()
                if second != numbers[0]:
                    numbers.append(second)
            self.first_phone.append(numbers[0])
            for e164 in numbers:
                pid += 1
                created = rng.randrange(span)
                seen = min(span - 1, created + rng.randrange(86400 * 200))
                yield (
                    f"{pid}\t{cid}\t{e164}\t{raw_form(e164, rng.randrange(4))}\tmobile"
                    f"\t{clock.fmt(created)}\t{clock.fmt(seen)}\n"
                )
        self.n_phones = pid - self.phone0

    PHONE_COLUMNS = "id, citizen_id, e164, raw, phone_type, created_at, last_seen_at"

    # tickets and contacts ------------------------------------------------------------------

    TICKET_COLUMNS = (
        "id, reference_code, kind, channel, status, language, citizen_id, ticket_type_id, "
        "department_id, external_institution_id, assigned_to_id, neighbourhood_id, "
        "address_text, place_key, latitude, longitude, description, received_at, "
        "received_by_id, place_of_application, due_at, legal_due_at, escalation_level, "
        "resolution, resolved_at, resolved_at_first_contact, updated_at"
    )
    CONTACT_COLUMNS = (
        "id, ticket_id, original_ticket_id, channel, external_ref, citizen_id, citizen_match, "
        "contact_name, phone_e164, phone_raw, description, received_at, received_by_id, "
        "place_of_application"
    )

    def ticket_rows(self) -> Iterator[tuple[str, str]]:
        """(ticket line, contact line) per ticket."""
        rng, clock, span = self.rng, self.clock, self.span
        types = self.ref["types"]
        type_pool = weighted_pool([(t, 1 + (i % 5) * 2) for i, t in enumerate(types)])
        channel_pool = weighted_pool(CHANNELS)
        neighbourhoods = self.ref["neighbourhoods"]
        staff = self.ref["staff"]
        addresses = self.addresses
        n_cit = self.n_citizens
        recent_window = 60 * 86400
        encode = reference_code.encode
        for i in range(self.n_tickets):
            tid = self.tick0 + i + 1
            t = type_pool[rng.randrange(len(type_pool))]
            channel = channel_pool[rng.randrange(len(channel_pool))]
            is_open = rng.random() < 0.10
            if is_open:
                received = span - rng.randrange(recent_window)
                status = (
                    "referred_externally"
                    if t["department_id"] is None
                    else OPEN_STATUSES[rng.randrange(4)]
                )
            else:
                received = rng.randrange(span - 3600)
                status = "closed" if rng.random() < 0.7 else "resolved"
            # citizen: 95 % known (a power law makes some citizens frequent), 5 % anonymous
            if rng.random() < 0.95:
                ci = int(n_cit * rng.random() ** 1.5)
                cid = self.cit0 + ci + 1
                fi, li = self._name(ci)
                name = f"{FIRST_NAMES[fi]} {LAST_NAMES[li]}"
                phone = (
                    self.first_phone[ci]
                    if (channel in PHONE_CHANNELS or rng.random() < 0.6)
                    else None
                )
                match = (
                    "tc"
                    if self.tc_holder[ci] and channel not in PHONE_CHANNELS
                    else ("phone" if phone else "id")
                )
                cid_s = str(cid)
            else:
                cid_s, name, match = N, None, "none"
                phone = self._mobile() if channel in PHONE_CHANNELS or rng.random() < 0.5 else None
            nb = (
                neighbourhoods[rng.randrange(len(neighbourhoods))]
                if (neighbourhoods and rng.random() < 0.9)
                else None
            )
            if rng.random() < 0.6:
                addr, key = addresses[rng.randrange(len(addresses))]
            else:
                addr, key = N, N
            if nb is not None and nb[1] is not None and rng.random() < 0.3:
                lat = f"{nb[1] + (rng.random() - 0.5) * 0.01:.6f}"
                lon = f"{nb[2] + (rng.random() - 0.5) * 0.01:.6f}"
            else:
                lat = lon = N
            hours = t["sla_hours"] * (4.2 if t["working"] else 1.0)
            due = received + int(hours * 3600)
            legal = t["legal"]
            legal_due = (
                received + 30 * 86400
                if legal in ("petition_30_days", "kvkk_30_days")
                else received + 21 * 86400
                if legal == "information_15_working_days"
                else None
            )
            if legal_due is not None and legal_due < due:
                due = legal_due
            first_contact = False
            if is_open:
                resolution = resolved_s = N
                updated = received + rng.randrange(max(1, span - received))
            else:
                first_contact = rng.random() < 0.15
                resolved = (
                    received
                    if first_contact
                    else min(
                        span - 1, received + rng.randrange(3600, max(3601, int(hours * 3600 * 1.5)))
                    )
                )
                resolution = RESOLUTIONS[rng.randrange(len(RESOLUTIONS))]
                resolved_s = clock.fmt(resolved)
                updated = resolved
            staff_id = staff[rng.randrange(len(staff))]
            assigned = (
                str(staff[rng.randrange(len(staff))])
                if status not in ("new", "referred_externally")
                else N
            )
            desc = DESCRIPTIONS[rng.randrange(len(DESCRIPTIONS))]
            place = "Hizmet masası" if channel == "desk" else N
            received_s = clock.fmt(received)
            dept = t["department_id"]
            inst = t["external_institution_id"]
            lang = "en" if rng.random() < 0.01 else "tr"
            escalation = "1" if is_open and rng.random() < 0.05 else "0"
            yield (
                f"{tid}\t{encode(tid)}\t{t['kind']}\t{channel}\t{status}\t{lang}\t{cid_s}"
                f"\t{t['id']}\t{N if dept is None else dept}\t{N if inst is None else inst}"
                f"\t{assigned}\t{N if nb is None else nb[0]}\t{addr}\t{key}\t{lat}\t{lon}"
                f"\t{desc}\t{received_s}\t{staff_id}\t{place}\t{clock.fmt(due)}"
                f"\t{N if legal_due is None else clock.fmt(legal_due)}\t{escalation}"
                f"\t{resolution}\t{resolved_s}\t{'t' if first_contact else 'f'}"
                f"\t{clock.fmt(updated)}\n",
                f"{self.contact0 + i + 1}\t{tid}\t{tid}\t{channel}"
                f"\t{f'bench-{channel}-{tid}' if channel in PHONE_CHANNELS else N}"
                f"\t{cid_s}\t{match}\t{name or N}\t{phone or N}"
                f"\t{raw_form(phone, tid & 3) if phone else N}\t{desc}\t{received_s}"
                f"\t{staff_id}\t{place}\n",
            )


def copy_tickets_and_contacts(url: str, gen: Generator, deferred: bool) -> int:
    """Stream tickets and contacts through two connections at once (two server backends).

    With foreign keys in place (``indexes-first``) contacts cannot arrive before their
    ticket is committed, so they are spooled to a temporary file and copied afterwards.
    """
    import tempfile
    from contextlib import ExitStack

    spool = (
        None if deferred else tempfile.TemporaryFile("w+", encoding="utf-8", dir="/tmp")  # noqa: SIM115
    )
    with psycopg.connect(libpq_dsn(url)) as c1, psycopg.connect(libpq_dsn(url)) as c2:
        for c in (c1, c2):
            c.execute("SET synchronous_commit = off")
        n = 0
        with ExitStack() as stack:
            cur1 = stack.enter_context(c1.cursor())
            cur2 = stack.enter_context(c2.cursor())
            tcopy = stack.enter_context(
                cur1.copy(f"COPY tickets ({gen.TICKET_COLUMNS}) FROM STDIN")
            )
            ccopy = (
                stack.enter_context(
                    cur2.copy(f"COPY ticket_contacts ({gen.CONTACT_COLUMNS}) FROM STDIN")
                )
                if deferred
                else None
            )
            tbuf: list[str] = []
            cbuf: list[str] = []

            def flush() -> None:
                tcopy.write("".join(tbuf))
                if ccopy is not None:
                    ccopy.write("".join(cbuf))
                else:
                    spool.write("".join(cbuf))  # type: ignore[union-attr]
                tbuf.clear()
                cbuf.clear()

            for tline, cline in gen.ticket_rows():
                tbuf.append(tline)
                cbuf.append(cline)
                n += 1
                if len(tbuf) >= CHUNK_ROWS:
                    flush()
                    if n % 500_000 == 0:
                        log(f"  tickets: {n:,}")
            flush()
        c1.commit()
        c2.commit()
        if spool is not None:
            spool.seek(0)
            with (
                c2.cursor() as cur2,
                cur2.copy(f"COPY ticket_contacts ({gen.CONTACT_COLUMNS}) FROM STDIN") as ccopy2,
            ):
                while chunk := spool.read(8 << 20):
                    ccopy2.write(chunk)
            c2.commit()
            spool.close()
    return n


# --------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="fraction of 1M citizens / 5M tickets (default 1.0)",
    )
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument(
        "--load-mode",
        choices=("deferred", "indexes-first"),
        default="deferred",
        help="drop secondary indexes/constraints while loading (default) or not",
    )
    args = parser.parse_args()
    if not make_url(args.url).database or "bench" not in make_url(args.url).database:
        raise SystemExit(f"refusing to drop the schema of a non-bench database: {args.url}")

    timer = Timer()
    now = datetime.now(UTC)
    ensure_database(args.url)
    engine = make_engine(args.url)
    factory = make_session_factory(engine)

    def reset_schema() -> None:
        models.Base.metadata.drop_all(engine)
        models.Base.metadata.create_all(engine)

    timer.step("drop_all + create_all", reset_schema)
    source = timer.step("reference data", lambda: load_reference_data(factory, now))
    ref = reference_snapshot(engine)
    log(
        f"catalogue: {len(ref['types'])} ticket types, {len(ref['neighbourhoods'])} "
        f"neighbourhoods, {len(ref['staff'])} staff; existing rows {ref['offsets']}"
    )

    gen = Generator(args, ref, now)
    conn = psycopg.connect(libpq_dsn(args.url), autocommit=True)
    conn.execute("SET synchronous_commit = off")
    conn.execute("SET maintenance_work_mem = '1GB'")
    before = schema_snapshot(conn)
    recreate: list[str] = []
    if args.load_mode == "deferred":
        recreate = timer.step("drop secondary indexes/constraints", lambda: drop_secondary(conn))  # type: ignore[assignment]

    def load_citizens() -> None:
        with conn.transaction():
            copy_lines(conn, "citizens", gen.CITIZEN_COLUMNS, gen.citizen_lines())
            copy_lines(conn, "citizen_phones", gen.PHONE_COLUMNS, gen.phone_lines())

    timer.step(f"COPY {gen.n_citizens:,} citizens + phones", load_citizens)
    timer.step(
        f"COPY {gen.n_tickets:,} tickets + contacts",
        lambda: copy_tickets_and_contacts(args.url, gen, args.load_mode == "deferred"),
    )

    if recreate:

        def rebuild() -> None:
            for ddl in recreate:
                t0 = time.perf_counter()
                conn.execute(ddl)
                log(f"  {time.perf_counter() - t0:6.1f} s  {ddl[:110]}")

        timer.step("re-create indexes/constraints", rebuild)
    after = schema_snapshot(conn)
    if after != before:
        for table in BIG_TABLES:
            missing = set(before[table]) - set(after[table])
            extra = set(after[table]) - set(before[table])
            if missing or extra:
                log(f"SCHEMA MISMATCH {table}: missing {missing} extra {extra}")
        raise SystemExit("final schema differs from create_all's")
    log("schema check: indexes and constraints identical to create_all's")

    def set_sequences() -> None:
        for table in BIG_TABLES:
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 1) FROM {table}))"
            )

    timer.step("set sequences", set_sequences)
    timer.step("VACUUM ANALYZE", lambda: conn.execute("VACUUM ANALYZE"))

    counts = {
        t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
        for t in BIG_TABLES
    }
    size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()
    shared = conn.execute(
        "SELECT count(*) FROM (SELECT e164 FROM citizen_phones GROUP BY e164 "
        "HAVING count(DISTINCT citizen_id) > 1) s"
    ).fetchone()
    total = timer.total
    summary = {
        "generated_at": now.isoformat(timespec="seconds"),
        "scale": args.scale,
        "seed": args.seed,
        "load_mode": args.load_mode,
        "reference_data": source,
        "counts": counts,
        "shared_phone_numbers": shared[0] if shared else None,
        "database_size": size[0] if size else None,
        "steps_s": {k: round(v, 1) for k, v in timer.steps.items()},
        "total_s": round(total, 1),
    }
    comment = json.dumps(summary, ensure_ascii=False).replace("'", "''")
    conn.execute(f"COMMENT ON DATABASE \"{make_url(args.url).database}\" IS '{comment}'")
    conn.close()
    engine.dispose()

    print()
    print(
        f"Generated in {total:.1f} s ({total / 60:.1f} min), load mode {args.load_mode}, "
        f"scale {args.scale}; database size {summary['database_size']}"
    )
    for name, value in counts.items():
        print(f"  {name:<16} {value:>12,}")
    print(f"  phone numbers shared by several citizens: {summary['shared_phone_numbers']:,}")
    print("  steps:")
    for name, secs in timer.steps.items():
        print(f"    {secs:8.1f} s  {name}")


if __name__ == "__main__":
    main()
