#!/usr/bin/env bash
# Deploys the application, its route and the load generator for a scenario into namespace e2e,
# and waits until traffic flows through the mesh and Prometheus has the stable version's series.
#   usage: deploy-app.sh <scenario>
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
parse_scenario "${1:-}"
require kubectl curl jq

kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f -
if [[ "$MODE" == ambient ]]; then
  kubectl label namespace "$NAMESPACE" --overwrite istio.io/dataplane-mode=ambient istio.io/use-waypoint=waypoint
  kubectl apply -f "$MANIFESTS/waypoint.yaml"
  kubectl -n "$NAMESPACE" wait --for=condition=Programmed --timeout=180s gateway/waypoint
else
  kubectl label namespace "$NAMESPACE" --overwrite istio-injection=enabled
fi

kubectl apply -f "$MANIFESTS/app.yaml"
kubectl apply -f "$MANIFESTS/$ROUTE_KIND.yaml"
kubectl apply -f "$MANIFESTS/loadgen.yaml"
for deployment in web-v1 web-v2 loadgen; do
  kubectl -n "$NAMESPACE" rollout status "deployment/$deployment" --timeout=180s
done
if [[ "$ROUTE_KIND" == httproute ]]; then
  # Istio reports on each parent whether it took the route (Accepted) and found its Services (ResolvedRefs).
  conditions='[.status.parents[]?.conditions[]? | select(.type == "Accepted" or .type == "ResolvedRefs") | .status] | join(",")'
  for _ in $(seq 60); do
    [[ "$(kubectl -n "$NAMESPACE" get httproutes.gateway.networking.k8s.io web -o json | jq -r "$conditions")" == True,True ]] && break
    sleep 2
  done
  kubectl -n "$NAMESPACE" get httproutes.gateway.networking.k8s.io web -o json | jq -e "$conditions == \"True,True\"" >/dev/null ||
    die "Istio has not accepted HTTPRoute web with its Services resolved: $(kubectl -n "$NAMESPACE" get httproutes.gateway.networking.k8s.io web -o jsonpath='{.status.parents}')"
fi

# The action's preflight wants the stable version's series: wait for Istio's request metrics.
reporter=destination
[[ "$MODE" == ambient ]] && reporter=waypoint
query="sum(istio_requests_total{reporter=\"$reporter\",destination_workload_namespace=\"$NAMESPACE\",destination_workload=\"web-v1\"})"
log "waiting for Prometheus to see web-v1's requests ($query)"
for _ in $(seq 90); do
  count="$(curl -fsS --get "http://127.0.0.1:$PROMETHEUS_HOST_PORT/api/v1/query" --data-urlencode "query=$query" | jq -r '.data.result[0].value[1] // "0"')"
  [[ "$count" != 0 ]] && { log "Prometheus counts $count requests to web-v1"; exit 0; }
  sleep 5
done
die "no istio_requests_total{reporter=\"$reporter\"} series for web-v1 after 7.5 minutes: is the load generator in the mesh?"
