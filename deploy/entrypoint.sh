#!/bin/sh
# Container entrypoint: with arguments, run that `zjtx` subcommand (migrate, topics, token …);
# without, serve the service named by ZJTX_SERVICE on ZJTX_HOST:ZJTX_PORT.
set -eu
if [ "$#" -gt 0 ]; then
  exec zjtx "$@"
fi
: "${ZJTX_SERVICE:?ZJTX_SERVICE must be one of registry, evaluation, finance, notification, monitor}"
case "$ZJTX_SERVICE" in
  registry|evaluation|finance|notification|monitor) ;;
  *) echo "unknown ZJTX_SERVICE: $ZJTX_SERVICE" >&2; exit 64 ;;
esac
if [ -n "${ZJTX_PORT:-}" ]; then
  exec zjtx serve "$ZJTX_SERVICE" --host "${ZJTX_HOST:-0.0.0.0}" --port "$ZJTX_PORT"
fi
exec zjtx serve "$ZJTX_SERVICE" --host "${ZJTX_HOST:-0.0.0.0}"
