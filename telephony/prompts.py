"""Voice prompts: texts in the repository, audio generated at install.

``telephony/prompts/<lang>/<name>.txt`` holds the text of prompt ``acikkapi/<name>`` in
language ``<lang>`` (``tr`` or ``en``). A line starting with ``[xx]`` is spoken with the
voice of language ``xx`` (the bilingual language menu). :func:`install_prompts` writes
8 kHz mono 16-bit WAV files to ``<sounds>/<lang>/acikkapi/<name>.wav`` with ``espeak-ng``
and ``sox``; a studio recording at ``<instance>/prompts/<lang>/<name>.wav`` is used instead
when present (converted to the same format). Audio is regenerated only when its source
(text or studio file) changed, tracked by a ``.sha256`` file beside each WAV.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

PROMPT_DIR = Path(__file__).resolve().parent / "prompts"
LANGUAGES = ("tr", "en")
VOICES = {"tr": "tr", "en": "en"}
_LANG_LINE = re.compile(r"^\[(?P<lang>[a-z]{2})\]\s*(?P<text>.*)$")


@dataclass(frozen=True)
class PromptResult:
    """What :func:`install_prompts` did: generated, studio-replaced and unchanged names."""

    generated: tuple[str, ...]
    studio: tuple[str, ...]
    unchanged: tuple[str, ...]


def prompt_names(lang: str) -> list[str]:
    """Names of every prompt text of ``lang`` in the repository, sorted."""
    return sorted(p.stem for p in (PROMPT_DIR / lang).glob("*.txt"))


def segments(text: str, lang: str) -> list[tuple[str, str]]:
    """Split a prompt text into ``(language, sentence)`` segments, one per non-empty line."""
    out: list[tuple[str, str]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        match = _LANG_LINE.match(line)
        if match:
            out.append((match.group("lang"), match.group("text")))
        else:
            out.append((lang, line))
    return out


def resolve_in_root(root: Path, path: Path) -> Path:
    """``path`` (under ``root``) with symlinks resolved as they would be inside ``root``.

    Debian links ``sounds/en`` to ``/etc/alternatives/...``; from the host that absolute
    link would point outside the chroot, so each absolute link target is re-rooted.
    """
    if str(root) == "/":
        return path.resolve()
    rel = path.relative_to(root)
    current = root
    parts = list(rel.parts)
    hops = 0
    while parts:
        part = parts.pop(0)
        candidate = current / part
        if candidate.is_symlink():
            hops += 1
            if hops > 40:
                raise OSError(f"too many symlinks under {path}")
            target = Path(os.readlink(candidate))
            if target.is_absolute():
                current = root
                parts = list(target.relative_to("/").parts) + parts
            else:
                parts = list(target.parts) + parts
            continue
        if part == "..":
            current = current.parent if current != root else root
        elif part != ".":
            current = candidate
    return current


def _sox_to_8k(src: Path, dst: Path) -> None:
    subprocess.run(
        ["sox", str(src), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", str(dst)],
        check=True,
        capture_output=True,
    )


def _synthesise(parts: list[tuple[str, str]], dst: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="acikkapi-tts-") as tmp:
        pieces: list[str] = []
        for index, (lang, sentence) in enumerate(parts):
            raw = Path(tmp) / f"{index}.wav"
            subprocess.run(
                ["espeak-ng", "-v", VOICES.get(lang, lang), "-s", "150", "-w", str(raw), sentence],
                check=True,
                capture_output=True,
            )
            pieces.append(str(raw))
        joined = Path(tmp) / "joined.wav"
        if len(pieces) == 1:
            joined = Path(pieces[0])
        else:
            subprocess.run(["sox", *pieces, str(joined)], check=True, capture_output=True)
        _sox_to_8k(joined, dst)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def install_prompts(sounds_dir: Path, root: Path, studio_dir: Path | None) -> PromptResult:
    """Write every prompt WAV under ``sounds_dir/<lang>/acikkapi`` (host paths in ``root``).

    Guarantees afterwards: each repository prompt has a WAV; a studio file, when present,
    is what plays; files are world-readable so user ``asterisk`` can play them.
    """
    generated: list[str] = []
    studio: list[str] = []
    unchanged: list[str] = []
    for lang in LANGUAGES:
        target = resolve_in_root(root, sounds_dir / lang) / "acikkapi"
        target.mkdir(parents=True, exist_ok=True)
        for name in prompt_names(lang):
            wav = target / f"{name}.wav"
            stamp = target / f"{name}.wav.sha256"
            studio_file = studio_dir / lang / f"{name}.wav" if studio_dir else None
            if studio_file is not None and studio_file.is_file():
                source = b"studio:" + studio_file.read_bytes()
            else:
                studio_file = None
                source = b"tts:" + (PROMPT_DIR / lang / f"{name}.txt").read_bytes()
            digest = _digest(source)
            if wav.exists() and stamp.exists() and stamp.read_text().strip() == digest:
                unchanged.append(f"{lang}/{name}")
                continue
            if studio_file is not None:
                _sox_to_8k(studio_file, wav)
                studio.append(f"{lang}/{name}")
            else:
                text = (PROMPT_DIR / lang / f"{name}.txt").read_text(encoding="utf-8")
                _synthesise(segments(text, lang), wav)
                generated.append(f"{lang}/{name}")
            os.chmod(wav, 0o644)
            stamp.write_text(digest + "\n")
    return PromptResult(tuple(generated), tuple(studio), tuple(unchanged))


def install_hold_music(moh_dir: Path) -> bool:
    """Write a short generated chime as hold music into ``moh_dir`` unless one exists.

    Returns ``True`` when it was written now.
    """
    moh_dir.mkdir(parents=True, exist_ok=True)
    target = moh_dir / "acikkapi-chime.wav"
    if target.exists():
        return False
    notes = ["523.25", "659.25", "783.99", "659.25", "587.33", "698.46", "880", "698.46"]
    with tempfile.TemporaryDirectory(prefix="acikkapi-moh-") as tmp:
        parts = []
        for index, freq in enumerate(notes):
            part = Path(tmp) / f"{index}.wav"
            subprocess.run(
                [
                    "sox",
                    "-n",
                    "-r",
                    "8000",
                    "-c",
                    "1",
                    "-b",
                    "16",
                    str(part),
                    "synth",
                    "0.7",
                    "sine",
                    freq,
                    "fade",
                    "q",
                    "0.05",
                    "0.7",
                    "0.3",
                    "vol",
                    "0.25",
                ],
                check=True,
                capture_output=True,
            )
            parts.append(str(part))
        silence = Path(tmp) / "silence.wav"
        subprocess.run(
            ["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(silence), "trim", "0", "2"],
            check=True,
            capture_output=True,
        )
        phrase = Path(tmp) / "phrase.wav"
        subprocess.run(["sox", *parts, str(silence), str(phrase)], check=True, capture_output=True)
        subprocess.run(
            ["sox", str(phrase), str(target), "repeat", "5"], check=True, capture_output=True
        )
    os.chmod(target, 0o644)
    return True
