#!/usr/bin/env bash
# make reliability: the fault suite RUNS times at this commit (every scenario on the single
# embedded server and on a three-node cluster), optionally with LOAD busy-loop processes
# saturating the CPU and FAULTS_SCALE scaling the event counts; then the hostile-input and
# security tests, the RBAC test and every fuzz target once. Rows go to $OUT, then
# docs/reliability.md (hack/benchdoc).
set -euo pipefail
: "${OUT:?}" "${RUNS:=1}" "${LOAD:=0}" "${FAULTS_SCALE:=1}" "${FAULTS_NATS:=both}" "${FUZZTIME:=15s}" "${GO:=go}"
mkdir -p "$(dirname "$OUT")"; : > "$OUT"
busy=()
cleanup() { for p in "${busy[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
for _ in $(seq 1 "$LOAD"); do yes > /dev/null & busy+=($!); done
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
echo "reliability: commit $commit, $RUNS run(s), $LOAD busy loop(s), scale $FAULTS_SCALE, NATS $FAULTS_NATS"
for run in $(seq 1 "$RUNS"); do
  start=$(date +%s)
  CROUPIER_RELIABILITY_RUN="$run/$RUNS @$commit load $LOAD scale $FAULTS_SCALE" CROUPIER_RELIABILITY_OUT="$OUT" \
    CROUPIER_FAULTS_NATS="$FAULTS_NATS" CROUPIER_FAULTS_SCALE="$FAULTS_SCALE" \
    "$GO" test -count=1 -timeout 90m ./e2e/faults/
  echo "reliability: run $run of $RUNS passed in $(( $(date +%s) - start )) s"
done
cleanup; busy=()
CROUPIER_RELIABILITY_OUT="$OUT" "$GO" test -count=1 -timeout 30m ./internal/devstack/
CROUPIER_RELIABILITY_OUT="$OUT" "$GO" test -count=1 -run TestControllerRBACIsLeastPrivilege ./controllers/
for t in $FUZZ_TARGETS; do
  name=${t%%:*}; pkg=${t#*:}
  out=$("$GO" test -run '^$' -fuzz "^$name\$" -fuzztime "$FUZZTIME" "$pkg" 2>&1) || { echo "$out"; exit 1; }
  execs=$(echo "$out" | grep -o 'execs: [0-9]*' | tail -1 | cut -d' ' -f2)
  echo "fuzz: $name ($pkg) | $execs inputs in $FUZZTIME | none failed | 0 | 0 | $name" | tee -a "$OUT"
done
"$GO" run ./hack/benchdoc -reliability -in "$OUT" -out docs/reliability.md
