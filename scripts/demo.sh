#!/usr/bin/env bash
# The quick start, on a fresh machine: starts a local control plane (kube-apiserver + etcd, and
# kube-controller-manager for garbage collection and namespace deletion), the CDS simulator (with
# a real redis-server behind each instance) and the operator; applies a password Secret and a
# RedisInstance; shows it reach Ready with its UUID, TaskId and endpoint; connects to Redis
# through the connection Secret; deletes it (its Secrets go with it); tears everything down.
#
#   scripts/demo.sh          run the demo and clean up
#   scripts/demo.sh --keep   leave everything running and print the KUBECONFIG to use (Ctrl-C ends)
set -euo pipefail
cd "$(dirname "$0")/.."
KEEP=0
[ "${1:-}" = "--keep" ] && KEEP=1

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

step "Installing what is missing (redis-server, the control plane binaries; cached after the first run)"
scripts/install-deps.sh
KUBEBUILDER_ASSETS=$(scripts/control-plane-tools.sh)
export KUBEBUILDER_ASSETS
cargo build --locked --quiet --bin cds-redis-operator --example control_plane
BIN=$PWD/target/debug/cds-redis-operator
KUBECTL=$KUBEBUILDER_ASSETS/kubectl
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cds-redis-demo.XXXXXX")
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "logs kept in $WORK"
}
trap cleanup EXIT

step "Starting kube-apiserver, etcd and kube-controller-manager on loopback"
target/debug/examples/control_plane >"$WORK/control-plane.out" 2>"$WORK/control-plane.log" &
PIDS+=($!)
for _ in $(seq 1 240); do
  grep -q '^KUBECONFIG=' "$WORK/control-plane.out" 2>/dev/null && break
  kill -0 "${PIDS[0]}" 2>/dev/null || { cat "$WORK/control-plane.log"; exit 1; }
  sleep 0.5
done
KUBECONFIG=$(sed -n 's/^KUBECONFIG=//p' "$WORK/control-plane.out")
[ -n "$KUBECONFIG" ] || { echo "the control plane did not start"; cat "$WORK/control-plane.log"; exit 1; }
export KUBECONFIG
"$KUBECTL" version 2>/dev/null | sed 's/^/    /'

step "Starting the CDS simulator"
SIM_PORT=$(free_port)
REDIS_FLAG=()
command -v redis-server >/dev/null && REDIS_FLAG=(--redis-backend)
"$BIN" simulator --listen "127.0.0.1:$SIM_PORT" --access-key demo:demo-secret \
  --create-delay 5s --delete-delay 3s --admin "${REDIS_FLAG[@]}" >"$WORK/simulator.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$SIM_PORT") 2>/dev/null && break; sleep 0.2; done
echo "    CDS API at http://127.0.0.1:$SIM_PORT/redis/ ${REDIS_FLAG[*]:+(a real redis-server behind each instance)}"

step "Installing the RedisInstance CRD"
"$KUBECTL" apply --server-side -f crds/
"$KUBECTL" wait --for condition=established crd/redisinstances.cds.capitalonline.net --timeout=60s

step "Starting the operator"
METRICS_PORT=$(free_port)
CDS_ENDPOINT="http://127.0.0.1:$SIM_PORT" CDS_ACCESS_KEY_ID=demo CDS_ACCESS_KEY_SECRET=demo-secret \
  "$BIN" run --metrics-address "127.0.0.1:$METRICS_PORT" --busy-poll-interval 1s >"$WORK/operator.log" 2>&1 &
PIDS+=($!)

step "Applying a password Secret and a RedisInstance (deploy/examples/05-connection-secret.yaml)"
"$KUBECTL" create namespace demo
"$KUBECTL" apply -n demo -f deploy/examples/00-password-secret.yaml -f deploy/examples/05-connection-secret.yaml
sleep 2
"$KUBECTL" get cdsredis -n demo -o wide

step "Waiting for Ready (the simulator takes 5s to create an instance)"
"$KUBECTL" wait -n demo --for=condition=Ready redisinstance/cache-app --timeout=120s
"$KUBECTL" get cdsredis -n demo -o wide
echo
"$KUBECTL" get redisinstance cache-app -n demo -o jsonpath='{range .status.conditions[*]}    {.type}={.status} ({.reason}){"\n"}{end}'

step "The connection Secret cache-app-connection (password not shown)"
get() { "$KUBECTL" get secret cache-app-connection -n demo -o "jsonpath={.data.$1}" | base64 -d; }
HOST=$(get host); PORT=$(get port)
echo "    host=$HOST port=$PORT instanceUuid=$(get instanceUuid) keys: $("$KUBECTL" get secret cache-app-connection -n demo -o jsonpath='{.data}' | python3 -c 'import json,sys; print(", ".join(sorted(json.load(sys.stdin))))')"
if [ ${#REDIS_FLAG[@]} -gt 0 ] && command -v redis-cli >/dev/null; then
  echo "    redis-cli PING through the connection Secret: $(REDISCLI_AUTH="$(get password)" redis-cli -h "$HOST" -p "$PORT" PING)"
fi

step "Events"
"$KUBECTL" get events -n demo --field-selector involvedObject.name=cache-app \
  -o custom-columns=TYPE:.type,REASON:.reason,MESSAGE:.message --sort-by=.metadata.creationTimestamp 2>/dev/null \
  || "$KUBECTL" describe redisinstance cache-app -n demo | sed -n '/Events:/,$p'

if [ "$KEEP" = 1 ]; then
  step "Everything keeps running. In another shell:"
  echo "    export KUBECONFIG=$KUBECONFIG"
  echo "    alias kubectl=$KUBECTL"
  echo "    kubectl get cdsredis -A -o wide"
  echo "    CDS simulator: http://127.0.0.1:$SIM_PORT (access key demo / demo-secret; admin at /admin/instances)"
  echo "    operator metrics: http://127.0.0.1:$METRICS_PORT/metrics   logs: $WORK"
  echo "Press Ctrl-C to stop and clean up."
  while kill -0 "${PIDS[2]}" 2>/dev/null; do sleep 1; done
  exit 0
fi

step "Deleting the RedisInstance: the operator deletes the cloud instance, then releases the object"
"$KUBECTL" delete -n demo redisinstance/cache-app --wait=true --timeout=120s
LEFT=$(python3 -c "import json,urllib.request; print(len(json.load(urllib.request.urlopen('http://127.0.0.1:$SIM_PORT/admin/instances'))['instances']))")
echo "    cloud instances left in the simulator: $LEFT"
[ "$LEFT" = 0 ]
# kube-controller-manager's garbage collector deletes what the object owned.
owned_left() {
  "$KUBECTL" get secret -n demo --ignore-not-found -o name cache-app-connection cache-app-cdsredis-password
}
for _ in $(seq 1 120); do [ -z "$(owned_left)" ] && break; sleep 0.5; done
if [ -n "$(owned_left)" ]; then
  echo "    still there after 60s: $(owned_left | tr '\n' ' ')(is kube-controller-manager running? logs in $WORK)"
  exit 1
fi
echo "    its connection Secret and password record were garbage-collected with it"
step "Demo finished"
