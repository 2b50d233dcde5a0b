#!/usr/bin/env bash
# Checks a run's outcome against the cluster. `promoted`: the action said promoted and finalized,
# the stable Deployment web-v1 now runs the canary's release, the canary is scaled to zero and the
# route sends 100 % to stable again. `rolled-back`: the action said rolled-back, the route sends
# 100 % to stable and web-v1 still runs its previous release.
#   usage: assert-outcome.sh <scenario> <promoted|rolled-back> <result output> <finalized output>
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
parse_scenario "${1:-}"
expected="${2:-}" result="${3:-}" finalized="${4:-}"
[[ "$expected" == promoted || "$expected" == rolled-back ]] || die "expected outcome must be 'promoted' or 'rolled-back', not '$expected'"
require kubectl jq

failures=0
check() { # <description> <actual> <wanted>
  if [[ "$2" == "$3" ]]; then
    printf 'ok   %s: %s\n' "$1" "$2"
  else
    printf 'FAIL %s: %s (wanted %s)\n' "$1" "$2" "$3"
    failures=$((failures + 1))
  fi
}

check "the action's result" "$result" "$expected"
[[ "$expected" == promoted ]] && check "the action's finalized output" "$finalized" true

if [[ "$ROUTE_KIND" == virtualservice ]]; then
  route="$(kubectl -n "$NAMESPACE" get virtualservices.networking.istio.io web -o json)"
  shares="$(bash "$E2E_ROOT/route-weights.sh" v1 v2 <<<"$route")"
else
  route="$(kubectl -n "$NAMESPACE" get httproutes.gateway.networking.k8s.io web -o json)"
  shares="$(bash "$E2E_ROOT/route-weights.sh" web-v1 web-v2 <<<"$route")"
fi
[[ -n "$shares" ]] || { check "rules routing to web" "none" "at least one"; shares=""; }
while read -r rule stable canary; do
  [[ -n "$rule" ]] && check "route web $rule" "$stable $canary" "stable=100 canary=0"
done <<<"$shares"

release_of() {
  kubectl -n "$NAMESPACE" get deployment "$1" -o json |
    jq -r '"\(.spec.template.metadata.annotations["e2e.istio-canary/release"] // "none") \(.spec.template.spec.volumes[] | select(.name == "conf") | .configMap.name)"'
}
stable_release="$(release_of web-v1)"
canary_release="$(release_of web-v2)"
if [[ "$expected" == promoted ]]; then
  check "web-v1 runs the canary's release" "$stable_release" "$canary_release"
  check "web-v2 replicas" "$(kubectl -n "$NAMESPACE" get deployment web-v2 -o jsonpath='{.spec.replicas}')" 0
else
  check "web-v1 runs a healthy configuration" "${stable_release#* }" web-healthy
  [[ "$stable_release" != "$canary_release" ]] || check "web-v1 kept its release" "$stable_release" "not $canary_release"
fi
if ((failures > 0)); then
  printf '%s: %d check(s) failed\n' "$1" "$failures" >&2
  exit 1
fi
