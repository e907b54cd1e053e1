#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need
# (Debian's tmux, redis-server, node/npm, chromium, openssl; a virtual
# environment with the package and its test extras; the pinned Claude Code CLIs
# (the oldest supported and the newest tested), Codex and Gemini CLIs from npm),
# then runs pytest, and the suite again with the clock moved ahead. Arguments go
# to pytest (one pass). `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# keep in step with CLAUDE_VERSIONS in tests/conftest.py
CLAUDE_CODE_VERSIONS=(2.1.197 2.1.332)

need=()
command -v tmux >/dev/null 2>&1 || need+=(tmux)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
# headless Chromium for the web page tests (tests/test_web.py, tests/cdp.py)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# certificates for the TLS Redis tests (tests/redis_server.py)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
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

# The real Claude Code CLIs, pinned, in a cache folder outside the repo; the
# tests find them there (tests/conftest.py). KEI_TEST_CLAUDE=/path/to/claude, if
# set, runs the real-client tests on that one client instead.
cache=${KEI_TEST_CLAUDE_DIR:-${KEI_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kei-message-test}}
export KEI_TEST_CLAUDE_DIR="$cache"
for version in "${CLAUDE_CODE_VERSIONS[@]}"; do
  claude_dir="$cache/claude-code-$version"
  if [ ! -x "$claude_dir/node_modules/.bin/claude" ]; then
    mkdir -p "$claude_dir"
    echo "test.sh: installing @anthropic-ai/claude-code@$version into $claude_dir" >&2
    (cd "$claude_dir" && npm install --no-audit --no-fund --loglevel=error \
      "@anthropic-ai/claude-code@$version" >/dev/null)
  fi
done

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

# Strict settings that cost seconds: lint, format, types and the architecture
# (import-linter contracts in pyproject.toml: arrows point down only) before the tests.
.venv/bin/ruff check kei_message tests scripts
.venv/bin/ruff format --check --quiet kei_message tests scripts
.venv/bin/mypy
.venv/bin/lint-imports

if [ $# -gt 0 ]; then
  exec .venv/bin/python -m pytest "$@"
fi
.venv/bin/python -m pytest

# Green on any day (#12): the suite again with the wall clock of every Python
# process 400 days ahead (tests/clock_ahead/sitecustomize.py), so a test that
# wrote a fixed date fails today, not on the day the date goes stale. Left out:
# what runs another clock (redis-server's TIME, the Claude Code CLI) and the
# long torture tests, which read no dates.
echo "test.sh: again with the clock 400 days ahead (KEI_TEST_CLOCK_AHEAD=400d)" >&2
KEI_TEST_CLOCK_AHEAD=400d PYTHONPATH="$PWD/tests/clock_ahead" \
  exec .venv/bin/python -m pytest -q -p no:cacheprovider -m "not redis and not claude" \
  --ignore tests/test_load.py --ignore tests/test_crash.py --ignore tests/test_concurrency.py
