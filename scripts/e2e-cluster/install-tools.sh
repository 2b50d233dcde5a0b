#!/usr/bin/env bash
# Downloads the pinned kind and istioctl (with Istio's samples, for the Prometheus addon) into
# $WORK_DIR, checking each download against the checksum its release publishes. Needs curl, tar,
# sha256sum; Docker is needed only from create-cluster.sh on.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require curl tar sha256sum

case "$(uname -m)" in
  x86_64) ARCH=amd64 ;;
  aarch64 | arm64) ARCH=arm64 ;;
  *) die "unsupported machine $(uname -m): kind and Istio publish amd64 and arm64 builds" ;;
esac
mkdir -p "$WORK_DIR/bin"
cd "$WORK_DIR"

# kind: the binary and its .sha256sum ("<hash>  kind-linux-<arch>").
if [[ "$(kind version 2>/dev/null || true)" != *"$KIND_VERSION "* ]]; then
  log "kind $KIND_VERSION"
  base="https://github.com/kubernetes-sigs/kind/releases/download/$KIND_VERSION"
  curl -fsSLo "kind-linux-$ARCH" "$base/kind-linux-$ARCH"
  curl -fsSLo "kind-linux-$ARCH.sha256sum" "$base/kind-linux-$ARCH.sha256sum"
  sha256sum -c "kind-linux-$ARCH.sha256sum"
  install -m 0755 "kind-linux-$ARCH" bin/kind
  rm -f "kind-linux-$ARCH" "kind-linux-$ARCH.sha256sum"
fi

# Istio: the release archive (istioctl, samples/addons) and its .sha256.
ISTIO_DIR="$WORK_DIR/istio-$ISTIO_VERSION"
if [[ ! -x "$ISTIO_DIR/bin/istioctl" ]]; then
  log "Istio $ISTIO_VERSION"
  archive="istio-$ISTIO_VERSION-linux-$ARCH.tar.gz"
  base="https://github.com/istio/istio/releases/download/$ISTIO_VERSION"
  curl -fsSLo "$archive" "$base/$archive"
  curl -fsSLo "$archive.sha256" "$base/$archive.sha256"
  sha256sum -c "$archive.sha256"
  tar -xzf "$archive"
  rm -f "$archive" "$archive.sha256"
fi
ln -sf "$ISTIO_DIR/bin/istioctl" bin/istioctl

require kubectl
log "tools: $(kind version), istioctl $(istioctl version --remote=false), $(kubectl version --client | head -1)"
