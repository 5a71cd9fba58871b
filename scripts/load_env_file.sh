# Sourced by scripts/run.sh and scripts/dashboard.sh for production starts: exports the
# variables of .env (or $BAKAME_ENV_FILE), as docker compose reads it, that the environment
# does not set already (the environment wins).
env_file=${BAKAME_ENV_FILE:-.env}
if [ -f "$env_file" ]; then
  while IFS='=' read -r name value || [ -n "$name" ]; do
    if [[ $name =~ ^[A-Z_][A-Z0-9_]*$ ]] && [ -z "${!name+x}" ]; then export "$name=$value"; fi
  done < "$env_file"
fi
