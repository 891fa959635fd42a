#!/usr/bin/env bash
# Builds versitygw, the S3-compatible gateway the warehouse export's tests write to on
# loopback, from its Go module (no prebuilt download) into $HOME/.cache/croupier/ and
# prints its path.
set -euo pipefail

VERSION=${VERSITYGW_VERSION:-v1.8.0}
CACHE=${CROUPIER_CACHE:-$HOME/.cache/croupier}
OUT="$CACHE/versitygw-$VERSION"

if [ -x "$OUT/versitygw" ]; then
  echo "$OUT/versitygw"
  exit 0
fi
mkdir -p "$OUT"
GOBIN="$OUT" GOFLAGS=-mod=mod go install "github.com/versity/versitygw/cmd/versitygw@$VERSION" >&2
echo "$OUT/versitygw"
