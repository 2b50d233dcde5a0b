#!/usr/bin/env bash
# Set-up for a fresh clone: Debian's prometheus (the tests and the demo start a real one on
# loopback) when it is missing, then the npm packages, Node 24 among them.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v prometheus >/dev/null 2>&1; then
  echo "installing Debian's prometheus package"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
prometheus --version 2>&1 | head -n 1

npm ci --no-audit --no-fund
echo "node for npm scripts: $(npm exec -- node --version)"
