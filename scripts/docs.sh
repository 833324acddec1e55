#!/usr/bin/env bash
# Makes the README's pictures with the project's own commands:
#   docs/nat-first.svg, docs/firewall-first.svg   (nfwlab diagram)
#   docs/live-view.png                            (nfwlab ui --screenshot, headless Chromium)
# Starts a lab named "docs", makes one blocked request in each topology, and removes the lab.
set -euo pipefail
NFWLAB=${NFWLAB:-nfwlab}
lab() { "$NFWLAB" --name docs "$@"; }
mkdir -p docs
trap 'lab down >/dev/null 2>&1 || true' EXIT
lab down >/dev/null 2>&1 || true
lab up --topology nat-first
for design in nat-first firewall-first; do
  lab diagram --topology "$design" --server server-a --dest blocked.example --out "docs/$design.svg"
done
lab curl server-a https://blocked.example/ --timeout 2 || true
lab switch firewall-first
lab curl server-b https://blocked.example/ --timeout 2 || true
lab curl server-a http://blocked.example/ --timeout 2 || true
lab ui --port 0 --screenshot docs/live-view.png
