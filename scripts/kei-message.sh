#!/usr/bin/env bash
# Drop-in for the original ~/.claude/scripts/kei-message.sh: the same arguments,
# run by the kei-message CLI (same bus, same cursors).
#
#   kei-message.sh send [--to NAME] [--from NAME] [@NAME|all] TEXT...
#   kei-message.sh inbox [--me NAME]        (no arguments: inbox)
#   kei-message.sh list
#   kei-message.sh channels | who | names
#
# Any other command goes to `kei message` as it is (wait, show, reply, ...).
# The CLI is looked for: $KEI_MESSAGE_BIN; next to this script (also through
# a symlink); the virtual environment it was installed from; the repository's
# .venv when run from a clone; kei-message on PATH; ~/.local/share/kei-message.
set -u

# `kei message install` writes the installing interpreter here.
installed_python="__KEI_MESSAGE_PYTHON__"

find_cli() {
  local self dir real
  if [ -n "${KEI_MESSAGE_BIN:-}" ]; then
    cli=("$KEI_MESSAGE_BIN")
    return 0
  fi
  self=${BASH_SOURCE[0]}
  for dir in "$(dirname -- "$self")" "$(dirname -- "$(readlink -f -- "$self" 2>/dev/null || echo "$self")")"; do
    if [ -x "$dir/kei-message" ]; then
      cli=("$dir/kei-message")
      return 0
    fi
  done
  case $installed_python in
    __KEI_MESSAGE*) ;;
    *)
      if [ -x "$installed_python" ]; then
        real=$(dirname -- "$installed_python")
        if [ -x "$real/kei-message" ]; then
          cli=("$real/kei-message")
        else
          cli=("$installed_python" -m kei_message)
        fi
        return 0
      fi
      ;;
  esac
  real=$(dirname -- "$(readlink -f -- "$self" 2>/dev/null || echo "$self")")
  if [ -x "$real/../.venv/bin/kei-message" ]; then
    cli=("$real/../.venv/bin/kei-message")
    return 0
  fi
  if command -v kei-message >/dev/null 2>&1; then
    cli=("$(command -v kei-message)")
    return 0
  fi
  if [ -x "$HOME/.local/share/kei-message/venv/bin/kei-message" ]; then
    cli=("$HOME/.local/share/kei-message/venv/bin/kei-message")
    return 0
  fi
  return 1
}

cli=()
if ! find_cli; then
  echo "kei-message.sh: error: cannot find the kei-message CLI (install it with scripts/install.sh, or set KEI_MESSAGE_BIN)" >&2
  exit 127
fi

if [ $# -eq 0 ]; then
  set -- inbox
fi

if [ "$1" = send ]; then
  # The original took every word that is not one of its options as text, even
  # words that start with '-' ("-5 degrees"): pass the options we know, then
  # '--', then the text words in their order.
  shift
  opts=()
  words=()
  while [ $# -gt 0 ]; do
    case $1 in
      --to | --from | --kind | --reply-to)
        if [ $# -ge 2 ]; then
          opts+=("$1" "$2")
          shift 2
        else
          opts+=("$1")
          shift
        fi
        ;;
      --to=* | --from=* | --kind=* | --reply-to=* | --live | --json | -h | --help)
        opts+=("$1")
        shift
        ;;
      --)
        shift
        words+=("$@")
        break
        ;;
      *)
        words+=("$1")
        shift
        ;;
    esac
  done
  exec "${cli[@]}" send "${opts[@]}" -- "${words[@]}"
fi

exec "${cli[@]}" "$@"
