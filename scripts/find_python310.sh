#!/usr/bin/env bash
# Prints the path of a working Python 3.10 (Rasa 3.6 needs exactly 3.10).
# Order: $PYTHON, python3.10 on PATH, pyenv's 3.10, then uv (installing 3.10 if needed).
works() { [ -n "$1" ] && "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1; }
for candidate in "${PYTHON:-}" "$(command -v python3.10 2>/dev/null)" \
                 "$(command -v pyenv >/dev/null 2>&1 && pyenv root)"/versions/3.10*/bin/python \
                 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10*/bin/python /usr/bin/python3.10 /usr/local/bin/python3.10; do
  if works "$candidate"; then echo "$candidate"; exit 0; fi
done
if command -v uv >/dev/null 2>&1; then
  echo "python3.10 not found; using uv to provide Python 3.10" >&2
  found=$(uv python find 3.10 2>/dev/null || { uv python install 3.10 >&2 && uv python find 3.10; })
  if works "$found"; then echo "$found"; exit 0; fi
fi
echo "ERROR: Python 3.10 is required (Rasa 3.6) but python3.10 was not found: install it, or install uv (https://docs.astral.sh/uv/) and rerun." >&2
exit 1
