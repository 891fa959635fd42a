#!/usr/bin/env bash
# `make dev`: the local stack on embedded defaults (see hack/devstack).
set -euo pipefail
cd "$(dirname "$0")/.."
assets=$(bash hack/build-envtest.sh)
export KUBEBUILDER_ASSETS="$assets"
exec go run ./hack/devstack "$@"
