#!/usr/bin/env bash
# The whole end-to-end test of one scenario on a kind cluster, as the workflow runs it step by step:
# tools, cluster and mesh, the app under load, then two releases through the bundled action: a
# healthy one (promoted and finalized) and a failing one (rolled back, 100 % stable).
#   usage: bash scripts/e2e-cluster/run.sh <sidecar-virtualservice|sidecar-httproute|ambient-httproute>
# Needs Docker, curl, jq, kubectl and Node 24 (`npm ci`). The cluster is deleted at the end unless
# KEEP_CLUSTER=1; one scenario at a time (a second run reuses the cluster: delete it between
# scenarios of different modes: `kind delete cluster --name istio-canary-e2e`).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
scenario="${1:-}"
parse_scenario "$scenario"

cleanup() {
  local code=$?
  ((code != 0)) && bash "$E2E_ROOT/collect-logs.sh" >&2
  [[ "${KEEP_CLUSTER:-0}" == 1 ]] || kind delete cluster --name "$CLUSTER_NAME"
}
bash "$E2E_ROOT/install-tools.sh"
trap cleanup EXIT
bash "$E2E_ROOT/create-cluster.sh" "$scenario"
bash "$E2E_ROOT/deploy-app.sh" "$scenario"

outcome() { grep -m1 "^$1=" "$WORK_DIR/outputs-$2.env" | cut -d= -f2- || true; }
for release in healthy failing; do
  log "release $release"
  bash "$E2E_ROOT/release.sh" "$release"
  bash "$E2E_ROOT/run-action.sh" "$scenario" "$release"
  expected=promoted
  [[ "$release" == failing ]] && expected=rolled-back
  bash "$E2E_ROOT/assert-outcome.sh" "$scenario" "$expected" "$(outcome result "$release")" "$(outcome finalized "$release")"
done
log "$scenario: healthy release promoted and finalized, failing release rolled back"
