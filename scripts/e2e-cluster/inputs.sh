#!/usr/bin/env bash
# Prints the action's inputs for a scenario, one `name=value` a line: the workflow appends them to
# $GITHUB_OUTPUT for its `uses: ./` steps, run-action.sh passes them to the bundle. The kubeconfig
# is not among them: the action reads $KUBECONFIG, which no log or output shows.
#   usage: inputs.sh <scenario>
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
parse_scenario "${1:-}"

virtual_service="" http_route="" stable_subset="" canary_subset="" stable_host="" canary_host=""
if [[ "$ROUTE_KIND" == virtualservice ]]; then
  virtual_service=web stable_subset=v1 canary_subset=v2 stages=10,50,100
else
  # Gateway API weights are proportional: a first stage below 1 % runs on real Envoys too.
  http_route=web stable_host=web-v1 canary_host=web-v2 stages=0.5,10,50,100
fi
reporter=destination
[[ "$MODE" == ambient ]] && reporter=waypoint

cat <<OUT
namespace=$NAMESPACE
virtual-service=$virtual_service
http-route=$http_route
stable-subset=$stable_subset
canary-subset=$canary_subset
stable-host=$stable_host
canary-host=$canary_host
stable-deployment=web-v1
canary-deployment=web-v2
reporter=$reporter
prometheus-url=http://127.0.0.1:$PROMETHEUS_HOST_PORT
stages=${E2E_STAGES:-$stages}
interval=15s
min-stage-duration=1m
max-stage-duration=6m
max-error-rate=1%
OUT
