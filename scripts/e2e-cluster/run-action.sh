#!/usr/bin/env bash
# Runs the bundled action for a scenario outside GitHub (what `uses: ./` does in the workflow) and
# leaves its outputs in $WORK_DIR/outputs-<label>.env. Needs Node 24 (`npm ci` brings it) and the
# committed dist/ (or `npm run bundle`).
#   usage: run-action.sh <scenario> <label>
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
parse_scenario "${1:-}"
label="${2:?a label for the outputs file, such as healthy}"
node="$REPO_ROOT/node_modules/.bin/node"
[[ -x "$node" ]] || node="$(command -v node)" || die "node is required (npm ci installs Node 24 under node_modules)"

mkdir -p "$WORK_DIR"
# The commit under test, as the runner's GITHUB_SHA: the action names the rollout after it.
GITHUB_SHA="${GITHUB_SHA:-$(git -C "$REPO_ROOT" rev-parse HEAD 2>/dev/null || echo unknown)}"
export GITHUB_SHA
bash "$E2E_ROOT/inputs.sh" "$1" >"$WORK_DIR/inputs-$label.env"
# The action's exit code is the outcome's to judge (a rollback fails the step): assert-outcome.sh does.
"$node" "$E2E_ROOT/run-action.ts" "$WORK_DIR/inputs-$label.env" "$WORK_DIR/outputs-$label.env" || true
cat "$WORK_DIR/outputs-$label.env"
