#!/usr/bin/env bash
# Installs and starts what the lab needs on a Debian or Ubuntu host, only where missing:
#   Docker Engine (docker.io), the Compose v2 plugin (Debian: docker-compose, on bookworm trixie's;
#   Ubuntu: docker-compose-v2), iptables, debootstrap, python3-venv, Graphviz (diagrams) and, on
#   Debian, Chromium with its WebDriver (the live view's browser tests); then starts dockerd.
# Harmless where everything is already there (Docker CE from Docker's repository counts as there).
#
# For tests, without touching the system or needing root:
#   NFWLAB_INSTALL_DRY_RUN=1  print the apt packages and sources it would install, and stop
#   NFWLAB_OS_RELEASE=FILE    read FILE instead of /etc/os-release
#   NFWLAB_ASSUME_MISSING=1   take every tool as missing (the test hosts have them all)
set -euo pipefail

OS_RELEASE=${NFWLAB_OS_RELEASE:-/etc/os-release}
DRY_RUN=${NFWLAB_INSTALL_DRY_RUN:-0}
ASSUME_MISSING=${NFWLAB_ASSUME_MISSING:-0}
TRIXIE_SOURCES=/etc/apt/sources.list.d/nfwlab-trixie.sources
TRIXIE_PIN=/etc/apt/preferences.d/nfwlab-trixie

log() { printf 'install-host: %s\n' "$*" >&2; }

need_root() {
  [ "$(id -u)" = 0 ] && return
  log "needs root (apt-get, dockerd, netlink): run it with sudo"
  exit 3
}

lacks() { [ "$ASSUME_MISSING" = 1 ] || ! command -v "$1" >/dev/null; }
lacks_venv() { [ "$ASSUME_MISSING" = 1 ] || ! python3 -c 'import ensurepip, venv' 2>/dev/null; }
lacks_compose() { [ "$ASSUME_MISSING" = 1 ] || ! docker compose version >/dev/null 2>&1; }

# What the host lacks, as words that choose_packages maps to packages; compose last, as before.
missing=()
check() { if "${@:2}"; then missing+=("$1"); fi; }
find_missing() {
  check docker lacks dockerd
  check iptables lacks iptables
  check nsenter lacks nsenter
  check debootstrap lacks debootstrap
  check venv lacks_venv
  check graphviz lacks dot
  check chromium lacks chromium
  check chromedriver lacks chromedriver
  check compose lacks_compose
}

# One os-release field, unquoted; os-release is read, not sourced, since its path may come from outside.
os_field() { sed -n "s/^$1=//p" "$OS_RELEASE" | tr -d "\"'"; }

# "debian CODENAME", "ubuntu CODENAME" or "other NAME": the family decides the package names.
# ID_LIKE brings derivatives in (Linux Mint is "ubuntu debian", Raspberry Pi OS "debian").
os_family() {
  [ -r "$OS_RELEASE" ] || { echo "other a system without $OS_RELEASE"; return; }
  local id like codename
  id=$(os_field ID) like=" $(os_field ID_LIKE) "
  if [ "$id" = ubuntu ] || [[ $like == *" ubuntu "* ]]; then
    codename=$(os_field UBUNTU_CODENAME)  # a derivative's VERSION_CODENAME is its own
    echo "ubuntu ${codename:-$(os_field VERSION_CODENAME)}"
  elif [ "$id" = debian ] || [[ $like == *" debian "* ]]; then
    echo "debian $(os_field VERSION_CODENAME)"
  else
    echo "other $(os_field PRETTY_NAME)"
  fi
}

# What to name when a person has to install by hand.
what_is() {
  case $1 in
    docker) echo "Docker Engine" ;;
    compose) echo "the Docker Compose v2 plugin" ;;
    nsenter) echo "nsenter (util-linux)" ;;
    venv) echo "Python's venv and ensurepip" ;;
    graphviz) echo "Graphviz" ;;
    chromium) echo "Chromium" ;;
    *) echo "$1" ;;
  esac
}

packages=()  # for apt-get install
sources=()   # apt files written first, so that apt-get update sees them

# The Compose v2 plugin: bookworm has none, but trixie's docker-compose installs on bookworm, pinned
# low so that nothing else comes from trixie. Ubuntu's is docker-compose-v2 (22.04 on, universe);
# Ubuntu never gets Debian's trixie.
choose_compose() {  # family codename
  if [ "$1" = ubuntu ]; then
    packages+=(docker-compose-v2)
  elif [ "$2" = bookworm ]; then
    packages+=(docker-compose/trixie) sources+=("$TRIXIE_SOURCES" "$TRIXIE_PIN")
  else
    packages+=(docker-compose)
  fi
}

# Only Debian gets Chromium from apt: Ubuntu's chromium is a transitional package for a snap, which
# does not run in CI containers. The browser tests skip themselves without it.
choose_chromium() {  # family thing
  [ "$1" = debian ] || return 0
  case $2 in chromium) packages+=(chromium) ;; chromedriver) packages+=(chromium-driver) ;; esac
}

say_no_chromium() {  # family
  local why="only Debian's comes from apt here"
  [ "$1" = ubuntu ] && why="Ubuntu's is a snap, which does not run in CI containers"
  log "not installing Chromium ($why): the live view's browser tests need Chromium and chromedriver, and skip themselves without them"
}

choose_packages() {  # family codename
  local thing
  for thing in "${missing[@]}"; do
    case $thing in
      docker) packages+=(docker.io) ;;
      nsenter) packages+=(util-linux) ;;
      venv) packages+=(python3-venv) ;;
      compose) choose_compose "$1" "$2" ;;
      chromium | chromedriver) choose_chromium "$1" "$thing" ;;
      *) packages+=("$thing") ;;
    esac
  done
  if [ "$1" != debian ] && [[ " ${missing[*]} " == *" chrom"* ]]; then say_no_chromium "$1"; fi
}

# Chromium is needed only where it would come from apt (Debian); elsewhere choose_chromium says
# that the browser tests will skip.
optional() {  # family thing
  [ "$1" != debian ] && { [ "$2" = chromium ] || [ "$2" = chromedriver ]; }
}

# Exits 3 naming what to install when apt cannot be used here.
refuse_unless_apt() {  # family description
  local required=() thing
  for thing in "${missing[@]}"; do
    optional "$1" "$thing" || required+=("$(what_is "$thing")")
  done
  [ ${#required[@]} -gt 0 ] || return 0
  local why=""
  if [ "$1" = other ]; then
    why="${2:-this system} is neither Debian nor Ubuntu"
  elif ! command -v apt-get >/dev/null; then
    why="no apt-get"
  else
    return 0
  fi
  local list
  list=$(printf '%s, ' "${required[@]}")
  log "$why: install by hand ${list%, }, then run this again"
  exit 3
}

write_trixie_sources() {
  cat > "$TRIXIE_SOURCES" <<'X'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
X
  cat > "$TRIXIE_PIN" <<'X'
Package: *
Pin: release n=trixie
Pin-Priority: 50
X
}

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  [ ${#sources[@]} -eq 0 ] || write_trixie_sources
  log "installing: ${packages[*]}"
  log "[${SECONDS}s] updating the package lists"
  apt-get update -q >/dev/null
  log "[${SECONDS}s] downloading and installing ${#packages[@]} packages (a minute or more; apt's output: /var/log/nfwlab-apt.log)"
  apt-get install -y -q --no-install-recommends "${packages[@]}" >/var/log/nfwlab-apt.log 2>&1 || {
    log "apt-get install failed; last lines of /var/log/nfwlab-apt.log:"; tail -n 20 /var/log/nfwlab-apt.log >&2; exit 3; }
  log "[${SECONDS}s] packages installed"
}

start_dockerd() {
  docker info >/dev/null 2>&1 && return
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
}

main() {
  [ "$DRY_RUN" = 1 ] || need_root
  local family detail  # detail: the codename, or the name of a system that is neither
  read -r family detail < <(os_family)
  find_missing
  refuse_unless_apt "$family" "$detail"
  choose_packages "$family" "$detail"
  if [ "$DRY_RUN" = 1 ]; then
    printf 'packages: %s\nsources: %s\n' "${packages[*]}" "${sources[*]}"
    exit 0
  fi
  [ ${#packages[@]} -eq 0 ] || apt_install
  start_dockerd
  docker compose version >/dev/null || { log "the Docker Compose v2 plugin is missing"; exit 3; }
  log "Docker $(docker version -f '{{.Server.Version}}'), $(docker compose version --short 2>/dev/null || echo compose) ready"
}

main
