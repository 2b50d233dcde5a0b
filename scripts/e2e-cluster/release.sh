#!/usr/bin/env bash
# Ships a release to the canary Deployment web-v2, as deploy.yml puts a new image on it: its pod
# template switches to the healthy or the failing configuration, with a new release annotation.
#   usage: release.sh <healthy|failing> [release-id]
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
variant="${1:-}"
[[ "$variant" == healthy || "$variant" == failing ]] || die "release must be 'healthy' or 'failing', not '$variant'"
release="${2:-$variant-$(date +%s)}"
require kubectl jq

patch="$(jq -cn --arg config "web-$variant" --arg release "$release" '{spec: {template: {
  metadata: {annotations: {"e2e.istio-canary/release": $release}},
  spec: {volumes: [{name: "conf", configMap: {name: $config}}]}}}}')"
kubectl -n "$NAMESPACE" patch deployment web-v2 --type=strategic -p "$patch"
# Scaled to zero after a promotion: the action scales it up and waits for its pods (as in deploy.yml).
kubectl -n "$NAMESPACE" rollout status deployment/web-v2 --timeout=180s
echo "$release"
