#!/usr/bin/env python
"""Fixed texts for the voice channel: the recording script, and audio rendered ahead of time.

``make voice-script`` (``python scripts/voice_prompts.py script --out results/voice-script.csv``)
    writes every fixed text to record as CSV: key, language, text, where it is used, the
    file name the recording must have (``voice/recordings/<lang>/<key>.wav``) and whether
    it exists. Texts with ``{placeholders}`` are made per turn and are not listed.

``make voice-prompts`` (``python scripts/voice_prompts.py render``)
    puts the audio of every fixed text of both languages into the audio store, through the
    voice channel's own chain (recorded prompt, else TTS), configured like the server:
    credentials.yml (``--credentials``) and the environment -- run it with the server's
    ``SENDER_ID_SECRET`` and ``REDIS_URL`` so the server finds the audio. Reports per
    language how many texts are recorded, synthesised (now or earlier) and missing
    (would be ``<Say>``); ``--strict`` exits 1 when any is missing.
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import sys
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Text

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from connectors.speech import VoiceOut  # noqa: E402
from connectors.speech_settings import RECORDED, SAY, SpeechSettings  # noqa: E402
from connectors.voice_texts import FixedText, fixed_texts  # noqa: E402

CHANNEL = "connectors.twilio_voice.TwilioVoiceInput"
COLUMNS = ("key", "language", "text", "where", "file", "recorded")


def prerendered(texts: Optional[Sequence[FixedText]] = None) -> List[FixedText]:
    """The fixed texts made ahead of time (per-turn texts are made in their turn)."""
    return [f for f in (fixed_texts() if texts is None else texts) if not f.per_turn]


def write_script(out, recordings_dir: Path) -> int:
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    rows = prerendered()
    for fixed in rows:
        file = Path(fixed.lang) / f"{fixed.key}.wav"
        writer.writerow([fixed.key, fixed.lang, fixed.text, fixed.where, str(file),
                         "yes" if (recordings_dir / file).is_file() else "no"])
    return len(rows)


def channel_credentials(path: Path) -> Dict:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return dict((data or {}).get(CHANNEL) or {})


async def render(voice_out: VoiceOut, texts: Sequence[FixedText], parallel: int = 4) -> Dict[Text, Dict[Text, List]]:
    """Every text through the chain; per language the keys recorded / synthesised / missing."""
    limit = asyncio.Semaphore(parallel)
    report: Dict[Text, Dict[Text, List]] = {}

    async def one(fixed: FixedText) -> None:
        async with limit:
            source, _ = await voice_out.audio(fixed.text, fixed.lang)  # no deadline: as long as TTS takes
        outcome = {RECORDED: "recorded", SAY: "missing"}.get(source, "synthesised")
        report.setdefault(fixed.lang, {}).setdefault(outcome, []).append(fixed.key)

    await asyncio.gather(*(one(f) for f in texts))
    return report


def print_report(report: Dict[Text, Dict[Text, List]], per_turn: Counter) -> int:
    """One line per language; the number of texts without audio."""
    missing_total = 0
    for lang in sorted(report):
        keys = report[lang]
        missing = keys.get("missing", [])
        missing_total += len(missing)
        print(f"{lang}: {len(keys.get('recorded', []))} recorded, {len(keys.get('synthesised', []))} synthesised, "
              f"{len(missing)} missing (<Say>); {per_turn.get(lang, 0)} texts with placeholders are made per turn")
        if missing:
            print(f"   missing: {', '.join(sorted(missing)[:10])}{' ...' if len(missing) > 10 else ''}")
    return missing_total


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    script = sub.add_parser("script", help="the texts to record, as CSV")
    script.add_argument("--out", default="-", help="CSV file (default: standard output)")
    run = sub.add_parser("render", help="audio of every fixed text into the audio store")
    run.add_argument("--credentials", default=str(ROOT / "credentials.yml"))
    run.add_argument("--strict", action="store_true", help="exit 1 when a text has no audio")
    args = parser.parse_args(argv)

    credentials = channel_credentials(Path(getattr(args, "credentials", ROOT / "credentials.yml")))
    settings = SpeechSettings.from_credentials(credentials)
    if args.command == "script":
        if args.out == "-":
            n = write_script(sys.stdout, settings.recordings_dir)
        else:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            with open(args.out, "w", newline="", encoding="utf-8") as out:
                n = write_script(out, settings.recordings_dir)
            print(f"{n} texts to record -> {args.out}", file=sys.stderr)
        return 0
    import os

    voice_out = VoiceOut.from_credentials(credentials, _Channel(os.environ.get("SENDER_ID_SECRET"),
                                                                settings.redis_url))
    all_texts = fixed_texts()
    report = asyncio.run(render(voice_out, prerendered(all_texts)))
    missing = print_report(report, Counter(f.lang for f in all_texts if f.per_turn))
    return 1 if (missing and args.strict) else 0


class _Channel:
    """What ``VoiceOut.from_credentials`` reads of the channel's settings."""

    def __init__(self, sender_id_secret: Optional[Text], redis_url: Optional[Text]) -> None:
        self.sender_id_secret, self.redis_url = sender_id_secret, redis_url


if __name__ == "__main__":
    sys.exit(main())
