#!/usr/bin/env bash
# Prints what explains a failed run: the namespace's objects and events, the route with its status,
# Istio's view of the proxies, and the last lines of each app and proxy container.
#   usage: collect-logs.sh
# No -e: a failed run is being explained, so print everything that can still be read.
set -uo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

section() { printf '\n----- %s\n' "$*"; }
section "objects"
kubectl -n "$NAMESPACE" get all,virtualservices.networking.istio.io,destinationrules.networking.istio.io,httproutes.gateway.networking.k8s.io,gateways.gateway.networking.k8s.io -o wide
section "routes (yaml, with status)"
kubectl -n "$NAMESPACE" get virtualservices.networking.istio.io,httproutes.gateway.networking.k8s.io -o yaml
section "events"
kubectl -n "$NAMESPACE" get events --sort-by=.lastTimestamp | tail -60
section "istioctl proxy-status"
istioctl proxy-status
section "istioctl analyze"
istioctl analyze -n "$NAMESPACE"
for pod in $(kubectl -n "$NAMESPACE" get pods -o name); do
  section "logs $pod"
  kubectl -n "$NAMESPACE" logs "$pod" --all-containers --tail=40
done
section "istiod"
kubectl -n istio-system logs deployment/istiod --tail=80
