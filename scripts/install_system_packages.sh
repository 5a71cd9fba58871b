#!/usr/bin/env bash
# Debian packages the tests use that a fresh machine may lack (installed only when missing):
# the English word list (answer checker's slip table), nginx (scale-out test), chromium and
# its driver (dashboard browser tests). Needs root (CI and these machines run as root).
set -euo pipefail
missing=()
[ -f /usr/share/dict/american-english ] || missing+=(wamerican)
# the load balancer of the scale-out test (tests/test_scale_out.py, docs/scaling.md)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
# Selenium is given /usr/bin/chromedriver and /usr/bin/chromium: it downloads nothing itself
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing Debian packages: ${missing[*]} (run: sudo apt-get install -y ${missing[*]})" >&2
    exit 1
  fi
  echo "Installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
