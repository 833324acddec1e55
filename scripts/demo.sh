#!/usr/bin/env bash
# The scenario, step by step: which server tried to reach a denied domain?
#   scripts/demo.sh [--name LAB] [--no-pause]
# Starts the lab if it is not up (nat-first), and leaves it running at the end.
# Diagrams of both topologies are written to $DEMO_DIR (default: a new temporary directory).
set -euo pipefail
NFWLAB=${NFWLAB:-nfwlab}
name=default pause=1
while [ $# -gt 0 ]; do
  case "$1" in
    --name) name=$2; shift 2 ;;
    --no-pause) pause=0; shift ;;
    *) echo "usage: $0 [--name LAB] [--no-pause]" >&2; exit 2 ;;
  esac
done
[ -t 0 ] || pause=0
out=${DEMO_DIR:-$(mktemp -d -t nfwlab-demo.XXXXXX)}
lab() { "$NFWLAB" --name "$name" "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ nfwlab %s\n' "$*"; lab "$@" || true; }
step() { if [ $pause = 1 ]; then read -r -p "   [Enter] to go on " _; fi; }
started=$(date +%s)

if ! lab status >/dev/null 2>&1; then
  say "Starting the lab"
  lab up --topology nat-first
fi

say "Topology nat-first: server -> NAT gateway -> firewall -> internet gateway"
run switch nat-first
run routes
run diagram --server server-a --dest blocked.example --out "$out/nat-first.svg"
echo "   The path, as the route tables decide it (no packet sent):"
run trace server-a blocked.example:443
step
say "server-a (10.0.136.108) asks for a denylisted domain over HTTPS"
run curl server-a https://blocked.example/ --timeout 3
step
say "The firewall's alert: src_ip is the NAT gateway (10.0.13.92), not server-a"
run alerts --last 1
echo "   ... and as AWS Network Firewall's alert log shows it:"
run alerts --format aws --last 1
step
say "Who did it? The alert can't say; the NAT gateway's translation log can"
run who
step
say "Topology firewall-first: server -> firewall -> NAT gateway -> internet gateway (routes only, nothing restarts)"
echo "   What changes in the route tables (the fix of the write-up):"
run routes --diff firewall-first
run switch firewall-first
run diagram --server server-a --dest blocked.example --out "$out/firewall-first.svg"
step
say "server-a asks for the same domain again"
run curl server-a https://blocked.example/ --timeout 3
step
say "The alert now names server-a (10.0.136.108)"
run alerts --last 1
run alerts --format aws --last 1
run who
say "Where the firewall sits decides what its logs can tell you. ($(( $(date +%s) - started )) s; diagrams in $out;" \
    "the lab stays up: make lab-down removes it.)"
