#!/bin/bash
# One-shot job (compose service `kafka-acls`, image apache/kafka, logged in as the super user admin): create or
# update each principal's SCRAM-SHA-512 credential from its ZJTX_KAFKA_<NAME>_PASSWORD and grant its ACLs. The broker
# denies whatever is not granted (allow.everyone.if.no.acl.found=false). Adding an existing ACL changes nothing, so
# the job runs on every `docker compose up`; a new password takes effect at the next run.
#
# Each service may write its own topic, read the topics its ServiceSpec subscribes to, write their dead-letter
# topics (a consumer dead-letters into <consumed topic>.dlq), and use its consumer group zjtx-<service>; for
# `zjtx replay <service>` (run in that service's container) it may create, write and read zjtx.replay.<service>.*
# in groups zjtx-<service>-replay-*. The topics job may create and describe the declared topics, nothing else.
# An agency reads the topics it is granted in groups agency-<name>*, and may write zjtx.agency.events.
# tests/deploy/test_compose.py runs this script with stand-in tools and compares the grants with the services' code.
set -euo pipefail

KAFKA_HOME=${KAFKA_HOME:-/opt/kafka}
BOOTSTRAP=${ZJTX_KAFKA_BOOTSTRAP:-kafka:9092}
: "${ZJTX_KAFKA_ADMIN_PASSWORD:?set ZJTX_KAFKA_ADMIN_PASSWORD}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 700 "$work"
cat > "$work/admin.properties" <<PROPS
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$ZJTX_KAFKA_ADMIN_PASSWORD";
PROPS

# user NAME PASSWORD: create or update the principal's SCRAM-SHA-512 credential.
user() {
  if [[ ! $2 =~ ^[A-Za-z0-9._-]{16,}$ ]]; then
    echo "password of $1: at least 16 of A-Z a-z 0-9 . _ - (openssl rand -hex 16)" >&2
    exit 64
  fi
  "$KAFKA_HOME/bin/kafka-configs.sh" --bootstrap-server "$BOOTSTRAP" --command-config "$work/admin.properties" \
    --alter --entity-type users --entity-name "$1" --add-config "SCRAM-SHA-512=[iterations=8192,password=$2]"
}

# allow PRINCIPAL literal|prefixed topic|group "OPERATION …" NAME…: allow User:PRINCIPAL those operations on those
# resources (from any host).
allow() {
  local principal=$1 pattern=$2 kind=$3 operations=$4 op name
  shift 4
  local args=()
  for op in $operations; do args+=(--operation "$op"); done
  for name in "$@"; do args+=("--$kind" "$name"); done
  "$KAFKA_HOME/bin/kafka-acls.sh" --bootstrap-server "$BOOTSTRAP" --command-config "$work/admin.properties" \
    --add --allow-principal "User:$principal" --resource-pattern-type "$pattern" "${args[@]}"
}

# service NAME: its consumer group zjtx-NAME.
service() {
  allow "$1" literal group "Read" "zjtx-$1"
}

# replayable NAME: `zjtx replay NAME` in NAME's container publishes the monitor's archive onto a topic of the run,
# zjtx.replay.NAME.<run> (created with its DLQ), and applies it in the group zjtx-NAME-replay-<run>.
replayable() {
  allow "$1" prefixed topic "Create Write Read" "zjtx.replay.$1."
  allow "$1" prefixed group "Read" "zjtx-$1-replay-"
}

# --- the services (ServiceSpec.subscribe in services/<name>/main.py) -------------------------------------------
user registry "${ZJTX_KAFKA_REGISTRY_PASSWORD:?set ZJTX_KAFKA_REGISTRY_PASSWORD}"
service registry
replayable registry
allow registry literal topic "Write" zjtx.registry.events
allow registry literal topic "Read" zjtx.evaluation.events zjtx.notification.events zjtx.agency.events
allow registry literal topic "Write" zjtx.evaluation.events.dlq zjtx.notification.events.dlq zjtx.agency.events.dlq

user evaluation "${ZJTX_KAFKA_EVALUATION_PASSWORD:?set ZJTX_KAFKA_EVALUATION_PASSWORD}"
service evaluation
replayable evaluation
allow evaluation literal topic "Write" zjtx.evaluation.events
allow evaluation literal topic "Read" zjtx.registry.events zjtx.agency.events zjtx.notification.events
allow evaluation literal topic "Write" zjtx.registry.events.dlq zjtx.agency.events.dlq zjtx.notification.events.dlq

user finance "${ZJTX_KAFKA_FINANCE_PASSWORD:?set ZJTX_KAFKA_FINANCE_PASSWORD}"
service finance
replayable finance
allow finance literal topic "Write" zjtx.finance.events
allow finance literal topic "Read" zjtx.evaluation.events
allow finance literal topic "Write" zjtx.evaluation.events.dlq

user notification "${ZJTX_KAFKA_NOTIFICATION_PASSWORD:?set ZJTX_KAFKA_NOTIFICATION_PASSWORD}"
service notification
replayable notification
allow notification literal topic "Write" zjtx.notification.events
allow notification literal topic "Read" \
  zjtx.evaluation.events zjtx.finance.events zjtx.registry.events zjtx.notification.events
allow notification literal topic "Write" \
  zjtx.evaluation.events.dlq zjtx.finance.events.dlq zjtx.registry.events.dlq zjtx.notification.events.dlq

user monitor "${ZJTX_KAFKA_MONITOR_PASSWORD:?set ZJTX_KAFKA_MONITOR_PASSWORD}"   # publishes nothing
service monitor                                                                  # not replayable
allow monitor literal topic "Read" \
  zjtx.registry.events zjtx.evaluation.events zjtx.finance.events zjtx.notification.events zjtx.agency.events
allow monitor literal topic "Write" zjtx.registry.events.dlq zjtx.evaluation.events.dlq zjtx.finance.events.dlq \
  zjtx.notification.events.dlq zjtx.agency.events.dlq

# --- the topics job (`zjtx topics`: the declared topics and their DLQs, shared.events.catalog.ALL_TOPICS) -------
user topics "${ZJTX_KAFKA_TOPICS_PASSWORD:?set ZJTX_KAFKA_TOPICS_PASSWORD}"
allow topics literal topic "Create Describe" \
  zjtx.registry.events zjtx.evaluation.events zjtx.finance.events zjtx.notification.events zjtx.agency.events \
  zjtx.registry.events.dlq zjtx.evaluation.events.dlq zjtx.finance.events.dlq zjtx.notification.events.dlq \
  zjtx.agency.events.dlq

# --- agencies (docs/agencies.md): read what each is granted, in its own groups; send its feeds -------------------
user agency-lishui "${ZJTX_KAFKA_AGENCY_LISHUI_PASSWORD:?set ZJTX_KAFKA_AGENCY_LISHUI_PASSWORD}"
allow agency-lishui literal topic "Read" zjtx.registry.events zjtx.evaluation.events
allow agency-lishui prefixed group "Read" agency-lishui
allow agency-lishui literal topic "Write" zjtx.agency.events

echo "kafka-acls: principals and ACLs are in place"
