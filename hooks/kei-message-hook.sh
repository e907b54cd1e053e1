#!/bin/sh
# Plugin launcher: runs the installed `kei-message-hook EVENT` (hooks/hooks.json
# calls this as ${CLAUDE_PLUGIN_ROOT}/hooks/kei-message-hook.sh EVENT).
#
# The plugin carries no Python: the package must be installed (scripts/install.sh
# puts it in ~/.local/share/kei-message/venv). Looked for, in order:
# $KEI_MESSAGE_HOOK; kei-message-hook on PATH; that venv; a .venv in this checkout.
# Not found: a note on stderr and exit 0, so Claude Code carries on undisturbed.
#
# The plugin cannot take install's options; environment variables stand in
# (set them in settings.json "env"): the Stop event delivers only with
# KEI_MAILBOX_STOP_DELIVERY=1 (`install --stop-delivery`), and
# KEI_MAILBOX_NO_WAKE=1 turns the wake waiter off (`install --no-wake`), and
# KEI_MAILBOX_NO_MIDTURN=1 the PostToolBatch delivery (`install --no-midturn`).
case ${1:-} in
  post-tool-batch)
    case ${KEI_MAILBOX_NO_MIDTURN:-} in
      1 | true | yes | on) exit 0 ;;
    esac
    ;;
  stop)
    case ${KEI_MAILBOX_STOP_DELIVERY:-} in
      1 | true | yes | on) ;;
      *) exit 0 ;;
    esac
    ;;
  wake)
    case ${KEI_MAILBOX_NO_WAKE:-} in
      1 | true | yes | on) exit 0 ;;
    esac
    ;;
esac
root=$(dirname -- "$0")/..
for hook in "${KEI_MESSAGE_HOOK:-}" "$(command -v kei-message-hook 2>/dev/null)" \
  "${HOME:-/nonexistent}/.local/share/kei-message/venv/bin/kei-message-hook" \
  "$root/.venv/bin/kei-message-hook"; do
  if [ -n "$hook" ] && [ -x "$hook" ]; then
    exec "$hook" "$@"
  fi
done
echo "kei-message plugin: kei-message-hook not found; install the package (scripts/install.sh)" >&2
exit 0
