#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need
# (Debian's tmux, redis-server, node/npm; a virtual environment with the
# package and its test extras; the pinned Claude Code, Codex and Gemini CLIs from
# npm), then
# runs pytest. Arguments go to pytest. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

CLAUDE_CODE_VERSION=2.1.197

need=()
command -v tmux >/dev/null 2>&1 || need+=(tmux)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "test.sh: installing ${need[*]} with apt-get" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

# The real Claude Code CLI, pinned, in a cache folder outside the repo.
cache=${KEI_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kei-message-test}
claude_dir="$cache/claude-code-$CLAUDE_CODE_VERSION"
if [ ! -x "$claude_dir/node_modules/.bin/claude" ]; then
  mkdir -p "$claude_dir"
  echo "test.sh: installing @anthropic-ai/claude-code@$CLAUDE_CODE_VERSION into $claude_dir" >&2
  (cd "$claude_dir" && npm install --no-audit --no-fund --loglevel=error \
    "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION" >/dev/null)
fi
export KEI_TEST_CLAUDE="$claude_dir/node_modules/.bin/claude"

# The real Codex and Gemini CLIs, pinned, beside it (issue 18).
CODEX_VERSION=0.169.0
GEMINI_VERSION=0.61.0
npm_pin() {  # DIR PACKAGE@VERSION BIN
  if [ ! -x "$1/node_modules/.bin/$3" ]; then
    mkdir -p "$1"
    echo "test.sh: installing $2 into $1" >&2
    (cd "$1" && npm install --no-audit --no-fund --loglevel=error "$2" >/dev/null)
  fi
}
npm_pin "$cache/codex-$CODEX_VERSION" "@openai/codex@$CODEX_VERSION" codex
npm_pin "$cache/gemini-$GEMINI_VERSION" "@google/gemini-cli@$GEMINI_VERSION" gemini
export KEI_TEST_CODEX="$cache/codex-$CODEX_VERSION/node_modules/.bin/codex"
export KEI_TEST_GEMINI="$cache/gemini-$GEMINI_VERSION/node_modules/.bin/gemini"

# Strict settings that cost seconds: lint, format and types before the tests.
.venv/bin/ruff check kei_message tests scripts
.venv/bin/ruff format --check --quiet kei_message tests scripts
.venv/bin/mypy

exec .venv/bin/python -m pytest "$@"
