#!/usr/bin/env bash
# Builds the test API server binaries (kube-apiserver, etcd, kubectl) from Go modules, with no
# prebuilt downloads, into $HOME/.cache/croupier/k8s-<version>/ and prints that directory.
#
# k8s.io/kubernetes cannot be `go install`ed: its go.mod replaces every staging module with a
# local path. A throwaway module that requires k8s.io/kubernetes and replaces each staging
# module with the same-numbered v0.x release builds it. etcd's server module has the same
# shape (it replaces its sibling modules), so it is built the same way.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-1.36.3}
ETCD_VERSION=${ETCD_VERSION:-3.6.16}
CACHE=${CROUPIER_CACHE:-$HOME/.cache/croupier}
OUT="$CACHE/k8s-$K8S_VERSION"

if [ -x "$OUT/kube-apiserver" ] && [ -x "$OUT/etcd" ] && [ -x "$OUT/kubectl" ]; then
  echo "$OUT"
  exit 0
fi
mkdir -p "$OUT"
STAGING_MINOR="0.${K8S_VERSION#1.}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

log() { echo "build-envtest: $*" >&2; }

build_k8s() {
  local dir="$work/k8s"
  mkdir -p "$dir"
  cd "$dir"
  go mod init croupier.local/envtest-k8s >/dev/null 2>&1
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
  {
    echo "require k8s.io/kubernetes v$K8S_VERSION"
    echo "replace ("
    # Every staging module k8s.io/kubernetes requires at v0.0.0 -> its published v0.x release.
    grep -E '^\s+k8s\.io/[a-z0-9-]+ v0\.0\.0$' "$gomod" | awk -v v="v$STAGING_MINOR" '{print "\t" $1 " => " $1 " " v}'
    echo ")"
  } >>go.mod
  cat >tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  log "resolving k8s.io/kubernetes v$K8S_VERSION"
  go mod tidy >/dev/null 2>&1 || go mod tidy
  local ld="-s -w -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${K8S_VERSION#1.} -X k8s.io/client-go/pkg/version.gitVersion=v$K8S_VERSION"
  ld="${ld%.*}"  # gitMinor keeps only the minor number
  ld="-s -w -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)"
  log "building kube-apiserver"
  CGO_ENABLED=0 go build -trimpath -ldflags "$ld" -o "$OUT/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
  log "building kubectl"
  CGO_ENABLED=0 go build -trimpath -ldflags "$ld" -o "$OUT/kubectl.tmp" k8s.io/kubernetes/cmd/kubectl
  mv "$OUT/kube-apiserver.tmp" "$OUT/kube-apiserver"
  mv "$OUT/kubectl.tmp" "$OUT/kubectl"
}

build_etcd() {
  local dir="$work/etcd"
  mkdir -p "$dir"
  cd "$dir"
  go mod init croupier.local/envtest-etcd >/dev/null 2>&1
  cat >>go.mod <<MOD
require go.etcd.io/etcd/server/v3 v$ETCD_VERSION
replace (
	go.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 v$ETCD_VERSION
	go.etcd.io/etcd/client/pkg/v3 => go.etcd.io/etcd/client/pkg/v3 v$ETCD_VERSION
	go.etcd.io/etcd/client/v3 => go.etcd.io/etcd/client/v3 v$ETCD_VERSION
	go.etcd.io/etcd/pkg/v3 => go.etcd.io/etcd/pkg/v3 v$ETCD_VERSION
)
MOD
  cat >tools.go <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  log "resolving etcd v$ETCD_VERSION"
  go mod tidy >/dev/null 2>&1 || go mod tidy
  log "building etcd"
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$OUT/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$OUT/etcd.tmp" "$OUT/etcd"
}

[ -x "$OUT/etcd" ] || build_etcd
[ -x "$OUT/kube-apiserver" ] && [ -x "$OUT/kubectl" ] || build_k8s
log "done: $OUT"
echo "$OUT"
