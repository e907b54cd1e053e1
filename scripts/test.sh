#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need
# (Debian's tmux, redis-server, node/npm; a virtual environment with the
# package and its test extras; the pinned Claude Code CLIs from npm: the
# oldest supported and the newest tested), then runs pytest. Arguments go to
# pytest. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# keep in step with CLAUDE_VERSIONS in tests/conftest.py
CLAUDE_CODE_VERSIONS=(2.1.197 2.1.332)

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

# Strict settings that cost seconds: lint, format and types before the tests.
.venv/bin/ruff check kei_message tests scripts
.venv/bin/ruff format --check --quiet kei_message tests scripts
.venv/bin/mypy

exec .venv/bin/python -m pytest "$@"
