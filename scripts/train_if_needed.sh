#!/usr/bin/env bash
# Trains models/bakame.tar.gz when data/, domain.yml, config.yml or the custom NLU components
# changed since the last model.
set -euo pipefail
cd "$(dirname "$0")/.."
fingerprint=$(find data domain.yml config.yml nlu_components -name "*.pyc" -prune -o -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
model=models/bakame.tar.gz
if [ -f "$model" ] && [ "$(cat models/.fingerprint 2>/dev/null)" = "$fingerprint" ]; then
  echo "Model is up to date ($model)."
  exit 0
fi
echo "Training $model (data, domain or config changed)..."
start=$(date +%s)
.venv/bin/rasa train --fixed-model-name bakame --out models --quiet
echo "$fingerprint" > models/.fingerprint
echo "Trained in $(( $(date +%s) - start )) s."
