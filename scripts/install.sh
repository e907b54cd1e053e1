#!/usr/bin/env bash
# Install kei-message from this checkout for the current user, and wire it into
# Claude Code. Safe to run again (it upgrades in place; settings stay as they are).
#
#   scripts/install.sh [--project] [--stop-delivery] [--no-wake] [--allow-bash] [--dry-run]
#   scripts/install.sh --package-only     (for the plugin: steps 1 and 2 only)
#
# 1. a virtual environment in ~/.local/share/kei-message/venv with the package
#    (Python >= 3.11: $PYTHON, else the newest python3.X found);
# 2. kei, kei-message and kei-message-hook linked into ~/.local/bin;
# 3. `kei message install ARGS` (hooks in ~/.claude/settings.json, /msg, the drop-in).
# Everything goes under $HOME.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
share="$HOME/.local/share/kei-message"
venv="$share/venv"
bin="$HOME/.local/bin"

pick_python() {
  local c
  for c in ${PYTHON:-} python3.14 python3.13 python3.12 python3.11 python3; do
    if command -v "$c" >/dev/null 2>&1 &&
      "$c" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$c"
      return 0
    fi
  done
  return 1
}

if [ ! -x "$venv/bin/python" ]; then
  if ! python=$(pick_python); then
    echo "install.sh: error: kei-message needs Python 3.11 or newer (set PYTHON=...)" >&2
    exit 2
  fi
  mkdir -p "$share"
  echo "install.sh: creating $venv with $python" >&2
  "$python" -m venv "$venv"
fi

# A plain (not editable) install: the checkout can move or go away afterwards.
# --force-reinstall --no-deps replaces our own package even when its version
# did not change; the first command brings the dependencies.
pip=("$venv/bin/python" -m pip install -q --disable-pip-version-check)
"${pip[@]}" "$src"
"${pip[@]}" --force-reinstall --no-deps "$src"

mkdir -p "$bin"
for name in kei kei-message kei-message-hook; do
  ln -sfn "$venv/bin/$name" "$bin/$name"
done
case ":${PATH}:" in
  *":$bin:"*) ;;
  *) echo "install.sh: note: $bin is not on your PATH; add it to use kei directly" >&2 ;;
esac

if [ "${1:-}" = --package-only ]; then
  echo "install.sh: installed the package; Claude Code is not wired (the plugin does that)" >&2
  exit 0
fi
exec "$venv/bin/kei" message install "$@"
