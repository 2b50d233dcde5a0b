#!/usr/bin/env bash
# Creates the kind cluster for a scenario and installs the mesh: the Gateway API CRDs (standard
# channel), Istio (profile `minimal`, istiod alone, for sidecars; `ambient` for ambient mode) and Istio's
# Prometheus addon, published on the host at 127.0.0.1:$PROMETHEUS_HOST_PORT.
#   usage: create-cluster.sh <scenario>
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
parse_scenario "${1:-}"
require docker kind istioctl kubectl
mkdir -p "$WORK_DIR"

if kind get clusters | grep -qx "$CLUSTER_NAME"; then
  log "kind cluster $CLUSTER_NAME exists: reusing it"
else
  log "kind cluster $CLUSTER_NAME"
  kind create cluster --name "$CLUSTER_NAME" --wait 120s --config - <<YAML
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
    extraPortMappings:
      - containerPort: $PROMETHEUS_NODE_PORT
        hostPort: $PROMETHEUS_HOST_PORT
        listenAddress: 127.0.0.1
YAML
fi
kind get kubeconfig --name "$CLUSTER_NAME" >"$KUBECONFIG"
chmod 600 "$KUBECONFIG"

log "Gateway API $GATEWAY_API_VERSION (standard channel)"
kubectl apply --server-side -f "https://github.com/kubernetes-sigs/gateway-api/releases/download/$GATEWAY_API_VERSION/standard-install.yaml"
kubectl wait --for=condition=Established --timeout=60s crd/httproutes.gateway.networking.k8s.io crd/gateways.gateway.networking.k8s.io

profile=minimal
[[ "$MODE" == ambient ]] && profile=ambient
log "Istio $ISTIO_VERSION, profile $profile"
istioctl install --set "profile=$profile" --skip-confirmation
kubectl -n istio-system rollout status deployment/istiod --timeout=180s
if [[ "$MODE" == ambient ]]; then
  kubectl -n istio-system rollout status daemonset/ztunnel --timeout=180s
  kubectl -n istio-system rollout status daemonset/istio-cni-node --timeout=180s
fi

log "Prometheus addon"
kubectl apply -f "$WORK_DIR/istio-$ISTIO_VERSION/samples/addons/prometheus.yaml"
kubectl apply -f "$MANIFESTS/prometheus-nodeport.yaml"
kubectl -n istio-system rollout status deployment/prometheus --timeout=180s
for _ in $(seq 60); do
  curl -fsS "http://127.0.0.1:$PROMETHEUS_HOST_PORT/-/ready" >/dev/null 2>&1 && break
  sleep 2
done
curl -fsS "http://127.0.0.1:$PROMETHEUS_HOST_PORT/-/ready" >/dev/null || die "Prometheus is not ready at 127.0.0.1:$PROMETHEUS_HOST_PORT"
