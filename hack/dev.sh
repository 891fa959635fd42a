#!/usr/bin/env bash
# `make dev`: the local stack on embedded defaults (see hack/devstack). The stack is built
# into the cache and run as its own process, so Ctrl-C stops it cleanly (exit 0: `go run`
# would exit 1 after the stack stopped, and make would report an error).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${CROUPIER_CACHE:-$HOME/.cache/croupier}
if [ ! -x "$CACHE/k8s-${K8S_VERSION:-1.36.3}/kube-apiserver" ]; then
  echo "make dev: building kube-apiserver, etcd and kubectl from Go modules (once; about 6 minutes on 2 cores)" >&2
fi
assets=$(bash hack/build-envtest.sh)
export KUBEBUILDER_ASSETS="$assets"
mkdir -p "$CACHE/bin"
bin="$CACHE/bin/croupier-devstack"
start=$(date +%s)
if [ -x "$bin" ]; then
  echo "make dev: building the stack (manager, dispatcher, local sinks; seconds when little changed)" >&2
else
  echo "make dev: building the stack for the first time (manager, dispatcher, local sinks: 2-4 minutes on 2 cores; Go's build cache makes later builds, make build and make test faster)" >&2
fi
go build -o "$bin.new" ./hack/devstack
mv "$bin.new" "$bin"
echo "make dev: built in $(( $(date +%s) - start )) s; starting" >&2
exec "$bin" "$@"
