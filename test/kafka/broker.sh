#!/usr/bin/env bash
# Single-node Apache Kafka (KRaft, combined broker+controller) for the integration tests and the bus bench.
# No Docker: the jars come from Maven Central through ./pom.xml (maven-dependency-plugin), into ./.kafka/.
#
#   test/kafka/broker.sh fetch|start|stop|status|reset|logs [n]
#
# Environment (all optional):
#   KAFKA_PORT=9092  KAFKA_CONTROLLER_PORT=9093   listeners, always on 127.0.0.1
#   KAFKA_VERSION=4.4.0                            3.9.x also needs KAFKA_MAVEN_PROFILE=kafka3
#   KAFKA_HEAP_OPTS="-Xms256m -Xmx1g"              the machines have 2 cores shared with other work
#   KAFKA_START_TIMEOUT=90                         seconds to wait for readiness
#   KAFKA_WORK_DIR=<this dir>/.kafka
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
KAFKA_MAVEN_PROFILE="${KAFKA_MAVEN_PROFILE:-kafka4}"
WORK="${KAFKA_WORK_DIR:-$HERE/.kafka}"
LIBS="$WORK/libs-$KAFKA_VERSION"
DATA="$WORK/data"
CONF="$WORK/server.properties"
PIDFILE="$WORK/kafka.pid"
OUT="$WORK/kafka.out"
FETCH_LOG="$WORK/fetch.log"
HOST="127.0.0.1"                                  # never 'localhost': Node may try ::1 first, the listener is IPv4
PORT="${KAFKA_PORT:-9092}"
CPORT="${KAFKA_CONTROLLER_PORT:-9093}"
CLUSTER_ID="${KAFKA_CLUSTER_ID:-MkU3OEVBNTcwNTJENDM2Qk}"   # any 16-byte base64url id (22 chars)
START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
JAVA="${JAVA:-java}"
MVN="${MVN:-mvn}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}"
# Kafka's own kafka-run-class.sh flags, plus exit-on-OOM so a dead broker is not mistaken for a slow one.
JVM_OPTS="${KAFKA_JVM_PERFORMANCE_OPTS:--server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true -XX:+ExitOnOutOfMemoryError}"

if [ "$KAFKA_MAVEN_PROFILE" = kafka3 ]; then
  LOG_OPTS="-Dlog4j.configuration=file:$HERE/log4j.properties"
else
  LOG_OPTS="-Dlog4j2.configurationFile=$HERE/log4j2.properties"
fi

log() { echo "[kafka] $*" >&2; }
die() { log "error: $*"; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# A pid file can outlive its broker and the pid be reused: only a java running kafka.Kafka counts.
is_running() {
  [ -f "$PIDFILE" ] || return 1
  local pid; pid="$(cat "$PIDFILE")"
  kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka'
}

require_java() {
  command -v "$JAVA" >/dev/null 2>&1 ||
    die "java not found. Install a JDK 17 or newer (Debian/Ubuntu: apt-get install openjdk-17-jre-headless) or set JAVA=/path/to/java."
  local major
  major="$("$JAVA" -version 2>&1 | awk -F'"' '/version/ { split($2, v, "."); print (v[1] == "1" ? v[2] : v[1]); exit }')"
  [ -n "$major" ] && [ "$major" -ge 17 ] 2>/dev/null ||
    die "Kafka 4.x brokers need Java 17 or newer; '$JAVA' is version ${major:-unknown}. Install openjdk-17 or set JAVA=."
}

require_maven() {
  command -v "$MVN" >/dev/null 2>&1 ||
    die "mvn not found: it resolves the Kafka jars from Maven Central. Install Maven 3.8+ (Debian/Ubuntu: apt-get install maven) or set MVN=/path/to/mvn."
}

fetch() {
  if compgen -G "$LIBS/kafka_2.13-$KAFKA_VERSION.jar" >/dev/null; then return 0; fi
  require_java
  require_maven
  mkdir -p "$WORK"
  local t0 tmp; t0="$(now)"; tmp="$LIBS.partial"
  rm -rf "$tmp"
  log "resolving Kafka $KAFKA_VERSION jars with Maven (~65 MB into ~/.m2 on the first run, then from there) ..."
  # Into a temporary folder first, so that an interrupted fetch never looks like a complete one.
  if ! "$MVN" -B -ntp -f "$HERE/pom.xml" -P "$KAFKA_MAVEN_PROFILE" -Dkafka.version="$KAFKA_VERSION" \
      dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" >"$FETCH_LOG" 2>&1; then
    grep -E 'ERROR|Could not' "$FETCH_LOG" | head -n 20 >&2 || tail -n 20 "$FETCH_LOG" >&2
    die "Maven could not resolve Kafka $KAFKA_VERSION (full log: $FETCH_LOG). Check access to Maven Central, or try KAFKA_VERSION=4.2.2, or KAFKA_VERSION=3.9.1 KAFKA_MAVEN_PROFILE=kafka3."
  fi
  mv "$tmp" "$LIBS"
  log "resolved $(find "$LIBS" -name '*.jar' | wc -l) jars in $(elapsed "$t0") s"
}

write_config() {
  mkdir -p "$WORK" "$DATA"
  # Test-speed settings: one partition for the internal topics (the default 50 makes the first group
  # join slow) and no initial rebalance delay (default 3 s per group).
  cat >"$CONF" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$CPORT
listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CPORT
advertised.listeners=PLAINTEXT://$HOST:$PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
PROPS
  if [ "$KAFKA_MAVEN_PROFILE" = kafka3 ]; then sed -i '/^share\./d' "$CONF"; fi
}

format_storage() {
  if [ -f "$DATA/meta.properties" ]; then return 0; fi
  log "formatting $DATA"
  # Static quorum (controller.quorum.voters): no --standalone, which Kafka 4.x rejects in that mode.
  # shellcheck disable=SC2086
  "$JAVA" -Xmx256m $LOG_OPTS -cp "$LIBS/*" kafka.tools.StorageTool \
    format -t "$CLUSTER_ID" -c "$CONF" --ignore-formatted >>"$OUT" 2>&1 ||
    { tail -n 30 "$OUT" >&2; die "storage format failed (try: $0 reset)"; }
}

start() {
  if is_running; then log "already running (pid $(cat "$PIDFILE"), port $PORT)"; return 0; fi
  local t0; t0="$(now)"
  require_java
  for p in "$PORT" "$CPORT"; do
    port_open "$p" && die "port $p on $HOST is already in use by another process; pick free ones with KAFKA_PORT / KAFKA_CONTROLLER_PORT."
  done
  fetch
  write_config
  : >"$OUT"
  format_storage
  log "starting Kafka $KAFKA_VERSION on $HOST:$PORT (controller $CPORT) ..."
  # fd 9 is the start lock: the broker must not inherit it, or every later broker.sh call would wait on it.
  # shellcheck disable=SC2086
  nohup "$JAVA" $HEAP_OPTS $JVM_OPTS $LOG_OPTS -cp "$LIBS/*" kafka.Kafka "$CONF" >>"$OUT" 2>&1 </dev/null 9>&- &
  echo $! >"$PIDFILE"
  local deadline=$((SECONDS + START_TIMEOUT))
  until grep -q "Kafka Server started" "$OUT" && port_open "$PORT"; do
    if ! is_running; then
      tail -n 40 "$OUT" >&2; rm -f "$PIDFILE"
      die "Kafka exited during startup (log above, full log: $OUT). If the data folder is from another version: $0 reset"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 40 "$OUT" >&2
      grep -qE "StaticLoggerBinder|No SLF4J providers" "$OUT" &&
        log "no SLF4J 1.x binding on the classpath: 'Kafka Server started' can never appear (check pom.xml logging deps)"
      stop
      die "not ready after ${START_TIMEOUT}s (full log: $OUT)"
    fi
    sleep 0.2
  done
  log "ready in $(elapsed "$t0") s (pid $(cat "$PIDFILE"), $HOST:$PORT)"
}

stop() {
  if ! is_running; then rm -f "$PIDFILE"; log "not running"; return 0; fi
  local pid t0; pid="$(cat "$PIDFILE")"; t0="$(now)"
  kill -TERM "$pid"                      # kafka.Kafka's shutdown hook does a controlled shutdown
  for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then log "still alive after 30 s, killing"; kill -KILL "$pid"; fi
  rm -f "$PIDFILE"
  log "stopped in $(elapsed "$t0") s"
}

# Two runs starting at once (two vitest processes) must not both format and launch.
with_lock() {
  mkdir -p "$WORK"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$WORK/.lock"
    flock -w 180 9 || die "another broker.sh has held $WORK/.lock for 3 min; is one stuck?"
  fi
  "$@"
}

case "${1:-}" in
  fetch) with_lock fetch ;;
  start) with_lock start ;;
  stop) with_lock stop ;;
  status)
    if is_running; then
      echo "running pid $(cat "$PIDFILE") $(sed -n 's|^advertised.listeners=PLAINTEXT://||p' "$CONF")"
    else echo "stopped"; exit 1; fi ;;
  reset) with_lock stop; rm -rf "$DATA" "$CONF" "$OUT" ;;
  logs) if [ -f "$OUT" ]; then tail -n "${2:-100}" "$OUT"; else log "no log yet ($OUT)"; fi ;;
  *) echo "usage: $0 fetch|start|stop|status|reset|logs [n]" >&2; exit 2 ;;
esac
