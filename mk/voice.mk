# Voice: recorded prompts and synthesised speech for the Twilio voice channel (issue 14).
# Included by the Makefile (-include mk/*.mk). Guide: docs/voice.md; recording: docs/designers.md.
#
#   make voice-script    the fixed texts to record, as CSV (key, language, text, where, file, recorded)
#                        -> $(VOICE_SCRIPT); recordings go to voice/recordings/<lang>/<key>.wav
#   make voice-prompts   audio of every fixed text of both languages into the audio store (recorded
#                        prompt, else the TTS endpoint), with the server's SENDER_ID_SECRET / REDIS_URL;
#                        reports recorded / synthesised / missing per language (VOICE_FLAGS=--strict)
#   make validate        also checks the recordings (scripts/check_recordings.py)

.PHONY: voice-script voice-prompts

VOICE_SCRIPT ?= results/voice-script.csv
CREDENTIALS ?= credentials.yml

voice-script: setup
	$(PY) scripts/voice_prompts.py script --out $(VOICE_SCRIPT)

voice-prompts: setup
	$(PY) scripts/voice_prompts.py render --credentials $(CREDENTIALS) $(VOICE_FLAGS)
