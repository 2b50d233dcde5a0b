#!/usr/bin/env bash
# Set-up for a fresh clone: Debian's prometheus (the tests and the demo start a real one on
# loopback), Debian's kubernetes-client (a real kubectl checks the Kubernetes API emulator) and
# Debian's shellcheck (a test lints the scripts of the real-cluster workflow) when they are missing, then the npm packages, Node 24 among them. With WITH_CHROMIUM=1 it also
# installs Debian's chromium, which `npm run demo` uses to draw each comment as a PNG (optional:
# without it the demo writes the Markdown and skips the pictures), and Debian's
# fonts-noto-color-emoji: Debian's chromium has no emoji font of its own, and without one the
# comment's ⏪ ❌ ✅ are drawn as empty boxes where GitHub shows them.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
if [ "${WITH_CHROMIUM:-0}" = "1" ]; then
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  dpkg-query -W -f='${Status}' fonts-noto-color-emoji 2>/dev/null | grep -q "ok installed" ||
    missing+=(fonts-noto-color-emoji)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing Debian's ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
prometheus --version 2>&1 | head -n 1
kubectl version --client 2>&1 | head -n 1 || true
shellcheck --version 2>&1 | sed -n 2p

npm ci --no-audit --no-fund
echo "node for npm scripts: $(npm exec -- node --version)"
