#!/usr/bin/env bash
# LiteLLM's proxy for the execution benchmark, in a venv of its own: tests/bench/out/litellm-venv (ignored
# by git), never in the workspace's uv.lock. Installs requirements.txt beside this file (litellm[proxy]
# and its whole closure, pinned with hashes; requirements.in says how it was made), compiled to
# bytecode as an image would ship it: with PYTHONDONTWRITEBYTECODE set (as on this machine) LiteLLM
# otherwise compiles the source of a module it fails to import on every request (its OpenTelemetry
# routing, a third of its CPU). Idempotent: does nothing when the venv already has exactly that file
# installed by this script. Prints the venv's litellm on stdout.
set -euo pipefail
cd "$(dirname "$0")/../../.."

venv=tests/bench/out/litellm-venv
here=tests/bench/litellm
stamp="$venv/.requirements.sha256"
want="$(cat "$here/requirements.txt" "$0" | sha256sum | cut -d' ' -f1)"

if [ -x "$venv/bin/litellm" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "$venv/bin/litellm"
    exit 0
fi
echo "litellm: installing into $venv (about a minute)" >&2
mkdir -p tests/bench/out
[ -x "$venv/bin/python" ] || uv venv --quiet --python 3.11 "$venv" >&2
VIRTUAL_ENV="$venv" uv pip sync --quiet --require-hashes --compile-bytecode --python "$venv/bin/python" "$here/requirements.txt" >&2
printf '%s\n' "$want" > "$stamp"
echo "$venv/bin/litellm"
