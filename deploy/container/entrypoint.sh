#!/bin/sh
# Container entrypoint for the outbox relayer (see Containerfile beside it).
#   relay    (default) relay and repair until SIGTERM: `docker stop` is a graceful stop
#   repair   a dedicated lease repairer (outbox-relayer run --no-relay)
#   migrate  apply the schema once (a release job, with the owner's DATABASE_URL)
# Settings come from the environment: DATABASE_URL, OUTBOX_RAILS_FILE, LEASE_SECONDS, ...
set -eu
: "${DATABASE_URL:?set DATABASE_URL (the relayer's login role, a member of symphony_executor)}"
command="${1:-relay}"
[ $# -gt 0 ] && shift
# exec: the relayer is PID 1 and receives the SIGTERM itself.
case "$command" in
    relay) exec outbox-relayer run --log-format json "$@" ;;
    repair) exec outbox-relayer run --no-relay --log-format json "$@" ;;
    migrate) exec outbox-db migrate "$@" ;;
    *) exec "$command" "$@" ;;
esac
