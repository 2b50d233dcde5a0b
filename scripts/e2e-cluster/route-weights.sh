#!/usr/bin/env bash
# Reads a VirtualService or an HTTPRoute as `kubectl get -o json` prints it (on stdin) and prints,
# for every rule that routes to the stable or the canary, the percentage each receives:
#   <rule>[:<name>] stable=<percent> canary=<percent>
# VirtualService: http routes, destinations told apart by subset (or by host without subsets); a
# lone destination without weight has 100. HTTPRoute: rules, backendRefs by Service name; weights
# are proportional (a missing weight is 1, Gateway API's default), so each share is weight / sum.
#   usage: kubectl get httproute web -o json | route-weights.sh <stable> <canary>
set -euo pipefail
[[ $# -eq 2 ]] || { echo "usage: route-weights.sh <stable subset or Service> <canary subset or Service> < route.json" >&2; exit 2; }

jq -r --arg stable "$1" --arg canary "$2" '
  def pct(w; total): if total == 0 then 0 else (w * 100 / total * 1000 | round / 1000) end;
  def share(list; name_of; weight_of):
    (list | map(weight_of) | add // 0) as $total
    | { stable: pct([list[] | select(name_of == $stable) | weight_of] | add // 0; $total),
        canary: pct([list[] | select(name_of == $canary) | weight_of] | add // 0; $total) };
  def line(rule; s): "\(rule) stable=\(s.stable) canary=\(s.canary)";
  if .kind == "VirtualService" then
    (.spec.http // []) | to_entries[]
    | .value.route as $route
    | select($route != null)
    | share($route; (.destination.subset // .destination.host);
        (if ($route | length) == 1 then (.weight // 100) else (.weight // 0) end)) as $s
    | select([$route[] | (.destination.subset // .destination.host)] | (index($stable) != null or index($canary) != null))
    | line("http[\(.key)]\(if .value.name then ":\(.value.name)" else "" end)"; $s)
  elif .kind == "HTTPRoute" then
    (.spec.rules // []) | to_entries[]
    | (.value.backendRefs // []) as $refs
    | share($refs; .name; (.weight // 1)) as $s
    | select([$refs[].name] | (index($stable) != null or index($canary) != null))
    | line("rules[\(.key)]\(if .value.name then ":\(.value.name)" else "" end)"; $s)
  else
    error("not a VirtualService or HTTPRoute: kind \(.kind)")
  end
'
