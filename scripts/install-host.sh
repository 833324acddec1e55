#!/usr/bin/env bash
# Installs and starts what the lab needs on a Debian/Ubuntu host, only where missing:
#   Docker Engine (Debian's docker.io), the Compose v2 plugin (on bookworm: trixie's
#   docker-compose package), iptables, debootstrap, python3-venv, Graphviz (diagrams) and
#   Chromium with its WebDriver (the live view's browser tests); then starts dockerd.
# Harmless where everything is already there.
set -euo pipefail

log() { printf 'install-host: %s\n' "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
  log "needs root (apt-get, dockerd, netlink): run it with sudo"
  exit 3
fi

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v iptables >/dev/null || need+=(iptables)
command -v nsenter >/dev/null || need+=(util-linux)
command -v debootstrap >/dev/null || need+=(debootstrap)
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
command -v dot >/dev/null || need+=(graphviz)
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
compose_missing=0
docker compose version >/dev/null 2>&1 || compose_missing=1

if [ ${#need[@]} -gt 0 ] || [ $compose_missing = 1 ]; then
  command -v apt-get >/dev/null || { log "no apt-get: install Docker Engine with Compose v2, iptables, debootstrap by hand"; exit 3; }
  export DEBIAN_FRONTEND=noninteractive
  compose_pkg=()
  if [ $compose_missing = 1 ]; then
    . /etc/os-release
    if [ "${VERSION_CODENAME:-}" = bookworm ]; then
      # bookworm has no Compose v2 plugin; trixie's docker-compose installs on bookworm.
      # Pinned low so that nothing else comes from trixie.
      cat > /etc/apt/sources.list.d/nfwlab-trixie.sources <<'X'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
X
      cat > /etc/apt/preferences.d/nfwlab-trixie <<'X'
Package: *
Pin: release n=trixie
Pin-Priority: 50
X
      compose_pkg=(docker-compose/trixie)
    else
      compose_pkg=(docker-compose)
    fi
  fi
  log "installing: ${need[*]} ${compose_pkg[*]}"
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${need[@]}" "${compose_pkg[@]}" >/var/log/nfwlab-apt.log 2>&1 || {
    log "apt-get install failed; last lines of /var/log/nfwlab-apt.log:"; tail -n 20 /var/log/nfwlab-apt.log >&2; exit 3; }
fi

if ! docker info >/dev/null 2>&1; then
  if [ -d /run/systemd/system ] && systemctl start docker 2>/dev/null; then
    log "started docker with systemctl"
  else
    log "starting dockerd (log: /var/log/nfwlab-dockerd.log)"
    nohup dockerd >/var/log/nfwlab-dockerd.log 2>&1 </dev/null &
  fi
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { log "dockerd did not come up; its log:"; tail -n 30 /var/log/nfwlab-dockerd.log >&2; exit 3; }
fi
docker compose version >/dev/null || { log "the Docker Compose v2 plugin is missing"; exit 3; }
log "Docker $(docker version -f '{{.Server.Version}}'), $(docker compose version --short 2>/dev/null || echo compose) ready"
