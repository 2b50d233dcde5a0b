# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables are read by the scripts that source this file
# Shared by the scripts in scripts/e2e-cluster/: pinned versions, names, scenario parsing, logging.
# Sourced, never run. Every script that sources it runs with `set -euo pipefail`.

# Pinned releases. Istio 1.28 supports Kubernetes 1.30-1.34 and Gateway API v1.4 (its release notes);
# kind v0.30.0's default node image is Kubernetes v1.34.0.
KIND_VERSION="${KIND_VERSION:-v0.30.0}"
ISTIO_VERSION="${ISTIO_VERSION:-1.28.3}"
GATEWAY_API_VERSION="${GATEWAY_API_VERSION:-v1.4.0}"
# The images (public, pinned in manifests/): docker.io/library/nginx:1.27-alpine serves both
# versions, docker.io/fortio/fortio:1.69.4 (Istio's own load generator) sends the traffic.

E2E_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$E2E_ROOT/../.." && pwd)"
MANIFESTS="$E2E_ROOT/manifests"
# Downloads, the cluster's kubeconfig and the action's outputs live here (git-ignored by its name).
WORK_DIR="${E2E_WORK_DIR:-$REPO_ROOT/.e2e-cluster}"
CLUSTER_NAME="${E2E_CLUSTER_NAME:-istio-canary-e2e}"
NAMESPACE="e2e"
# Prometheus' NodePort, published on the host by kind's extraPortMappings.
PROMETHEUS_NODE_PORT=30090
PROMETHEUS_HOST_PORT="${E2E_PROMETHEUS_PORT:-9090}"
export PATH="$WORK_DIR/bin:$PATH"
# The kind cluster's kubeconfig (E2E_KUBECONFIG points the checks at another cluster, as the tests do).
export KUBECONFIG="${E2E_KUBECONFIG:-$WORK_DIR/kubeconfig}"

log() { printf '==> %s\n' "$*" >&2; }
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

SCENARIOS="sidecar-virtualservice sidecar-httproute ambient-httproute"

# Sets MODE (sidecar|ambient) and ROUTE_KIND (virtualservice|httproute) from a scenario name.
parse_scenario() {
  case "${1:-}" in
    sidecar-virtualservice) MODE=sidecar ROUTE_KIND=virtualservice ;;
    sidecar-httproute) MODE=sidecar ROUTE_KIND=httproute ;;
    ambient-httproute) MODE=ambient ROUTE_KIND=httproute ;;
    *) die "scenario '${1:-}' is not one of: $SCENARIOS" ;;
  esac
}

require() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is required and not on PATH (run scripts/e2e-cluster/install-tools.sh for kind and istioctl)"
  done
}
