#!/bin/bash
# Kafka container command (compose service `kafka`, image apache/kafka 3.9): SASL before the image's own start.
#
# The image renders server.properties from the KAFKA_* environment and formats the storage, but its format takes no
# SCRAM credentials, and in KRaft the first SCRAM user can only be written at format time (--add-scram): without one
# nobody can log in to grant anything. So, before handing over to the image's /etc/kafka/docker/run:
#   1. write the broker's JAAS file (KafkaServer: PLAIN for the controller listener, whose one user is admin, and
#      SCRAM-SHA-512 for the client listener; both log in as admin, the super user) and point KAFKA_OPTS at it;
#   2. write admin's client settings for the healthcheck (kafka-broker-api-versions.sh --command-config);
#   3. on first start (no meta.properties yet) format the storage with admin's SCRAM-SHA-512 credential, from the
#      same properties the image renders; the image's own format then finds it formatted, which it accepts.
# Every other principal is created by the kafka-acls job (deploy/kafka/acls.sh), as admin, on each `up`.
set -euo pipefail

KAFKA_HOME=${KAFKA_HOME:-/opt/kafka}
KAFKA_DOCKER_RUN=${KAFKA_DOCKER_RUN:-/etc/kafka/docker/run}
ZJTX_KAFKA_SECRETS=${ZJTX_KAFKA_SECRETS:-/tmp/zjtx-kafka}
: "${CLUSTER_ID:?CLUSTER_ID is required}"
: "${KAFKA_LOG_DIRS:?KAFKA_LOG_DIRS is required}"
: "${ZJTX_KAFKA_ADMIN_PASSWORD:?set ZJTX_KAFKA_ADMIN_PASSWORD (openssl rand -hex 16)}"
password=$ZJTX_KAFKA_ADMIN_PASSWORD
if [[ ! $password =~ ^[A-Za-z0-9._-]{16,}$ ]]; then
  echo "ZJTX_KAFKA_ADMIN_PASSWORD: at least 16 of A-Z a-z 0-9 . _ - (it goes into JAAS and SCRAM syntax)" >&2
  exit 64
fi

umask 077
mkdir -p "$ZJTX_KAFKA_SECRETS"
cat > "$ZJTX_KAFKA_SECRETS/jaas.conf" <<JAAS
KafkaServer {
  org.apache.kafka.common.security.plain.PlainLoginModule required
    username="admin" password="$password" user_admin="$password";
  org.apache.kafka.common.security.scram.ScramLoginModule required
    username="admin" password="$password";
};
JAAS
cat > "$ZJTX_KAFKA_SECRETS/admin.properties" <<PROPS
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$password";
PROPS
export KAFKA_OPTS="${KAFKA_OPTS:+$KAFKA_OPTS }-Djava.security.auth.login.config=$ZJTX_KAFKA_SECRETS/jaas.conf"

# server.properties from the environment, by the image's rule (KafkaDockerWrapper): KAFKA_ dropped, lower case,
# _ → .  ___ → -  __ → _ ; the JVM and log4j variables are not broker properties.
render_properties() {
  local name key
  for name in $(compgen -e | LC_ALL=C sort); do
    [[ $name == KAFKA_* ]] || continue
    case $name in
      KAFKA_VERSION|KAFKA_HEAP_OPTS|KAFKA_LOG4J_OPTS|KAFKA_OPTS|KAFKA_JMX_OPTS|KAFKA_JVM_PERFORMANCE_OPTS|\
      KAFKA_GC_LOG_OPTS|KAFKA_LOG4J_ROOT_LOGLEVEL|KAFKA_LOG4J_LOGGERS|KAFKA_TOOLS_LOG4J_LOGLEVEL|KAFKA_JMX_HOSTNAME)
        continue ;;
    esac
    key=${name#KAFKA_}
    key=${key,,}
    key=${key//_/.}
    key=${key//.../-}
    key=${key//../_}
    printf '%s=%s\n' "$key" "${!name}"
  done
}

if [[ ! -f "${KAFKA_LOG_DIRS%%,*}/meta.properties" ]]; then
  render_properties > "$ZJTX_KAFKA_SECRETS/format.properties"
  "$KAFKA_HOME/bin/kafka-storage.sh" format --cluster-id "$CLUSTER_ID" --config "$ZJTX_KAFKA_SECRETS/format.properties" \
    --add-scram "SCRAM-SHA-512=[name=admin,password=$password]"
  rm -f "$ZJTX_KAFKA_SECRETS/format.properties"
fi

exec "$KAFKA_DOCKER_RUN"
