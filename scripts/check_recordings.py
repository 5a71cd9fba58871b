#!/usr/bin/env python
"""Checks the native speakers' recordings in ``voice/recordings/<lang>/*.wav`` (``make validate``,
through scripts/check_data.py; alone: ``python scripts/check_recordings.py``).

* format: a WAV file, PCM or G.711 mu-law, mono, sampled at 8 kHz or more (error otherwise);
* length: between 0.3 and 30 seconds (error), and not far longer than its text (warning);
* unused: a file named after no fixed text (``make voice-script`` lists the names) (warning);
* missing: fixed texts of a language with recordings that have none yet (one warning per
  language; ``make voice-script`` writes the list).

Nothing is checked while the folder does not exist (recordings are optional: TTS or ``<Say>``
speak what is not recorded).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Text

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from connectors.audio import FORMAT_MULAW, FORMAT_PCM, AudioError, wav_info  # noqa: E402
from connectors.voice_texts import LANGUAGES, FixedText, fixed_texts, text_hash  # noqa: E402

MIN_SECONDS, MAX_SECONDS = 0.3, 30.0
SECONDS_PER_CHAR = 0.1  # slow, clear speech for children; a recording 3x longer than that is suspicious

Add = Callable[[Text, Text, int, Text, Text], None]  # (level, path, line, code, message)


def recordings_dir(root: Path) -> Path:
    configured = os.environ.get("VOICE_RECORDINGS_DIR")
    path = Path(configured) if configured else Path("voice/recordings")
    return path if path.is_absolute() else root / path


def check_file(path: Path, rel: Text, text: Optional[Text], add: Add) -> None:
    try:
        info = wav_info(path.read_bytes())
    except (AudioError, OSError) as exc:
        add("error", rel, 1, "recording-not-wav", f"not a WAV file ({exc}): export it as WAV, mono, 16-bit PCM")
        return
    problems = []
    if info.format_tag not in (FORMAT_PCM, FORMAT_MULAW):
        problems.append(f"format tag {info.format_tag} (use PCM or mu-law)")
    if info.channels != 1:
        problems.append(f"{info.channels} channels (use mono)")
    if info.sample_rate < 8000:
        problems.append(f"{info.sample_rate} Hz (use 8000 Hz or more)")
    if problems:
        add("error", rel, 1, "recording-format", "; ".join(problems))
        return
    seconds = info.duration
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        add("error", rel, 1, "recording-length",
            f"{seconds:.1f} s long: a prompt is between {MIN_SECONDS} and {MAX_SECONDS:.0f} s")
    elif text and seconds > 3 * SECONDS_PER_CHAR * len(text) + 2:
        add("warning", rel, 1, "recording-too-long",
            f"{seconds:.1f} s for {len(text)} characters: is it the right text, or is there silence to trim?")


def check_recordings(root: Path, add: Add, checked: Optional[Dict[Text, int]] = None) -> None:
    folder = recordings_dir(root)
    if not folder.is_dir():
        return
    texts: Dict[Text, List[FixedText]] = {lang: [f for f in fixed_texts(root) if f.lang == lang and not f.per_turn]
                                         for lang in LANGUAGES}
    count = 0
    for lang_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        if lang_dir.name not in LANGUAGES:
            add("warning", _rel(lang_dir, root), 1, "recording-language",
                f"folder '{lang_dir.name}' is no language of the assistant ({', '.join(LANGUAGES)})")
            continue
        by_name = {f.key: f.text for f in texts[lang_dir.name]}
        by_name.update({text_hash(f.text): f.text for f in texts[lang_dir.name]})
        files = sorted(lang_dir.glob("*.wav"))
        for path in files:
            count += 1
            rel = _rel(path, root)
            if path.stem not in by_name:
                add("warning", rel, 1, "recording-unused",
                    f"no fixed {lang_dir.name} text is named '{path.stem}' (make voice-script lists the names)")
            check_file(path, rel, by_name.get(path.stem), add)
        recorded = {p.stem for p in files}
        missing = [f.key for f in texts[lang_dir.name] if f.key not in recorded and text_hash(f.text) not in recorded]
        if files and missing:
            add("warning", _rel(lang_dir, root), 1, "recording-missing",
                f"{len(missing)} of {len(texts[lang_dir.name])} fixed texts have no recording yet "
                f"(e.g. {', '.join(missing[:3])}); make voice-script lists them")
    if checked is not None:
        checked["recordings"] = count


def _rel(path: Path, root: Path) -> Text:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def main() -> int:
    findings: List[tuple] = []
    check_recordings(ROOT, lambda *finding: findings.append(finding))
    for level, path, line, _, message in findings:
        print(f"{path}:{line} — {'warning: ' if level == 'warning' else ''}{message}")
    errors = sum(1 for f in findings if f[0] == "error")
    print(f"check_recordings: {errors} error(s), {len(findings) - errors} warning(s).")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
