#!/usr/bin/env bash
# Multi-host manager test on Docker: three managers in three FROM-scratch containers on a
# Docker network. Disconnects the leader's container from the network (a new leader must be
# elected and take writes), reconnects it (it must catch up), and checks that every write
# is on every manager. Reusable by later issues: source it or copy the helpers.
#
#   deploy/multihost/test.sh            (fails when docker is unavailable: it never skips)
#
# Env: CARGO_TARGET_DIR (default target), FLOTILLA_MULTIHOST_SUBNET (default 172.29.71).
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
    echo "FAIL multihost: no Docker engine answers \`docker info\`; this test needs one" \
        "(tests/run leaves it out only under FLOTILLA_SKIP_DOCKER=1)" >&2
    exit 1
fi

TARGET_DIR="${CARGO_TARGET_DIR:-target}"
NET="flt-multihost-$$"
SUBNET="${FLOTILLA_MULTIHOST_SUBNET:-172.29.71}"
IMAGE="flotilla-multihost:test"
IPS=("$SUBNET.11" "$SUBNET.12" "$SUBNET.13")
NAMES=("flt-$$-m1" "flt-$$-m2" "flt-$$-m3")

CA="$(mktemp)"
cleanup() {
    rm -f "$CA"
    for n in "${NAMES[@]}"; do docker rm -f "$n" >/dev/null 2>&1 || true; done
    docker network rm "$NET" >/dev/null 2>&1 || true
}
trap cleanup EXIT

step() { printf '=== %s\n' "$*"; }

step "static build"
RUSTFLAGS='-C target-feature=+crt-static' cargo build --quiet -p flotilla \
    --target x86_64-unknown-linux-gnu
BIN="$TARGET_DIR/x86_64-unknown-linux-gnu/debug/flotilla"
CTX="$(mktemp -d)"
cp "$BIN" "$CTX/flotilla"
cp deploy/multihost/Dockerfile "$CTX/"
docker build --quiet -t "$IMAGE" "$CTX" >/dev/null
rm -rf "$CTX"

step "network $NET ($SUBNET.0/24)"
docker network create --subnet "$SUBNET.0/24" "$NET" >/dev/null

run_manager() { # index, extra args...
    local i="$1"; shift
    docker run -d --name "${NAMES[$i]}" --hostname "m$((i + 1))" --network "$NET" \
        --ip "${IPS[$i]}" "$IMAGE" manager --data-dir /data --listen 0.0.0.0:2377 \
        --advertise "${IPS[$i]}:2377" "$@" >/dev/null
}

# The CLI runs on the host and reaches the containers through the bridge.
CLI="$TARGET_DIR/x86_64-unknown-linux-gnu/debug/flotilla"
flt() { # manager index, args...
    local i="$1"; shift
    FLOTILLA_HOST="${IPS[$i]}:2377" FLOTILLA_TOKEN="$TOKEN" FLOTILLA_TLSCACERT="$CA" "$CLI" "$@"
}

wait_for() { # seconds, description, command...
    local secs="$1" what="$2"; shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then echo "FAIL: $what" >&2; exit 1; fi
        sleep 0.2
    done
}

step "start m1 (--init)"
run_manager 0 --init
token_ready() { docker cp "${NAMES[0]}:/data/api-token" - >/dev/null; }
wait_for 20 "api token of m1" token_ready
TOKEN="$(docker cp "${NAMES[0]}:/data/api-token" - | tar -xO)"
TOKEN="${TOKEN//$'\n'/}"
# Every manager speaks mutual TLS; the CLI verifies them against the cluster CA, which the
# manager writes beside its api-token.
docker cp "${NAMES[0]}:/data/ca.pem" - | tar -xO >"$CA"
wait_for 20 "m1 answers" flt 0 node ls
JOIN="$(flt 0 join-token manager -q)"

step "join m2, m3"
run_manager 1 --join "${IPS[0]}:2377" --token "$JOIN"
run_manager 2 --join "${IPS[0]}:2377" --token "$JOIN"
three_reachable() { [ "$(flt "$1" node ls | grep -cE 'Leader|Reachable')" = 3 ]; }
wait_for 60 "three reachable managers" three_reachable 0
flt 0 node ls

leader_index() {
    local host
    host="$(flt "$1" node ls | awk '/Leader/ { print ($2 == "*") ? $3 : $2 }')"
    echo $(( ${host#m} - 1 ))
}
L="$(leader_index 0)"
OTHER=$(( (L + 1) % 3 ))
step "leader is m$((L + 1)); write a label before the partition"
flt "$OTHER" node update --label-add before=1 "m$((L + 1))" >/dev/null

step "disconnect m$((L + 1)) from the network"
docker network disconnect "$NET" "${NAMES[$L]}"
new_leader() { flt "$OTHER" node ls | grep Leader | grep -qv " m$((L + 1)) "; }
wait_for 20 "a new leader among the connected managers" new_leader
write_during() { flt "$OTHER" node update --label-add during=1 "m$((L + 1))"; }
wait_for 20 "a write during the partition" write_during
flt "$OTHER" node ls

step "reconnect m$((L + 1))"
docker network connect --ip "${IPS[$L]}" "$NET" "${NAMES[$L]}"
caught_up() { flt "$L" state export | grep -q '"during"'; }
wait_for 30 "the old leader catches up" caught_up
wait_for 30 "three reachable managers again" three_reachable "$OTHER"
for i in 0 1 2; do
    flt "$i" state export | grep -q '"before"' || { echo "FAIL: m$((i + 1)) lost a write" >&2; exit 1; }
    flt "$i" state export | grep -q '"during"' || { echo "FAIL: m$((i + 1)) lost a write" >&2; exit 1; }
done
flt "$OTHER" node ls
echo "PASS multihost"
