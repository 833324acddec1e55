"""scripts/install-host.sh chooses Debian's or Ubuntu's packages from os-release. Each test runs it in
dry-run (nothing installed, no root) with a fake os-release, and compares the exact apt packages and
sources it would install."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
SCRIPT = ROOT / "scripts" / "install-host.sh"
BASH = shutil.which("bash") or "/bin/bash"  # by its path: some tests give the script a PATH of stand-ins

TRIXIE = ["/etc/apt/sources.list.d/nfwlab-trixie.sources", "/etc/apt/preferences.d/nfwlab-trixie"]
COMMON = ["docker.io", "iptables", "util-linux", "debootstrap", "python3-venv", "graphviz"]

OS_RELEASES = {
    "debian-bookworm": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\nID=debian\n',
    "debian-trixie": 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nVERSION_ID="13"\nVERSION_CODENAME=trixie\nID=debian\n',
    "ubuntu-jammy": 'PRETTY_NAME="Ubuntu 22.04.5 LTS"\nVERSION_ID="22.04"\nID=ubuntu\nID_LIKE=debian\n'
                    'VERSION_CODENAME=jammy\nUBUNTU_CODENAME=jammy\n',
    "ubuntu-noble": 'PRETTY_NAME="Ubuntu 24.04.3 LTS"\nVERSION_ID="24.04"\nID=ubuntu\nID_LIKE=debian\n'
                    'VERSION_CODENAME=noble\nUBUNTU_CODENAME=noble\n',
    # A derivative: its own codename, Ubuntu's packages.
    "linuxmint": 'PRETTY_NAME="Linux Mint 22"\nID=linuxmint\nID_LIKE="ubuntu debian"\nVERSION_CODENAME=wilma\n'
                 'UBUNTU_CODENAME=noble\n',
    "fedora": 'NAME="Fedora Linux"\nVERSION_ID=40\nID=fedora\nPRETTY_NAME="Fedora Linux 40 (Workstation Edition)"\n',
}


def dry_run(tmp_path: Path, os_name: str, *, assume_missing: bool = True, path: str | None = None):
    os_release = tmp_path / "os-release"
    os_release.write_text(OS_RELEASES[os_name])
    env = {**os.environ, "NFWLAB_INSTALL_DRY_RUN": "1", "NFWLAB_OS_RELEASE": str(os_release),
           "NFWLAB_ASSUME_MISSING": "1" if assume_missing else "0"}
    if path is not None:
        env["PATH"] = path
    return subprocess.run([BASH, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30)


def plan(result) -> tuple[list[str], list[str]]:
    """The packages and sources lines of a dry run, as lists."""
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(":", 1) for line in result.stdout.splitlines())
    assert set(lines) == {"packages", "sources"}, result.stdout
    return lines["packages"].split(), lines["sources"].split()


def test_debian_bookworm_gets_trixies_compose_pinned_low(tmp_path):
    packages, sources = plan(dry_run(tmp_path, "debian-bookworm"))
    assert packages == [*COMMON, "chromium", "chromium-driver", "docker-compose/trixie"]
    assert sources == TRIXIE


def test_debian_trixie_has_its_own_compose(tmp_path):
    packages, sources = plan(dry_run(tmp_path, "debian-trixie"))
    assert packages == [*COMMON, "chromium", "chromium-driver", "docker-compose"]
    assert sources == []


@pytest.mark.parametrize("os_name", ["ubuntu-jammy", "ubuntu-noble", "linuxmint"])
def test_ubuntu_gets_docker_compose_v2_no_trixie_and_no_chromium_snap(tmp_path, os_name):
    result = dry_run(tmp_path, os_name)
    packages, sources = plan(result)
    assert packages == [*COMMON, "docker-compose-v2"]
    assert sources == []
    assert "the live view's browser tests need Chromium" in result.stderr


def test_fedora_is_refused_naming_what_to_install(tmp_path):
    result = dry_run(tmp_path, "fedora")
    assert result.returncode == 3
    assert result.stdout == ""
    assert "Fedora Linux 40 (Workstation Edition) is neither Debian nor Ubuntu" in result.stderr
    assert "Docker Engine" in result.stderr and "the Docker Compose v2 plugin" in result.stderr


def fake_host(tmp_path: Path, *, compose_works: bool, chromium: bool = False, apt: bool = True) -> str:
    """A PATH holding only stand-ins for the lab's tools, and the few real ones the script itself uses."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sed", "tr", "id"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    (bin_dir / "python3").symlink_to(sys.executable)  # has venv and ensurepip
    tools = ["dockerd", "iptables", "nsenter", "debootstrap", "dot"] + (["chromium", "chromedriver"] if chromium else [])
    tools += ["apt-get"] if apt else []  # never run in a dry run, only looked for
    for tool in tools:
        (bin_dir / tool).write_text("#!/bin/sh\nexit 0\n")
    # `docker compose version` works with Docker CE's plugin (GitHub's runners), fails without a plugin.
    (bin_dir / "docker").write_text(f"#!/bin/sh\nexit {0 if compose_works else 1}\n")
    for f in bin_dir.iterdir():
        if not f.is_symlink():
            f.chmod(0o755)
    return str(bin_dir)


def test_docker_ce_with_compose_already_there_installs_nothing_on_ubuntu(tmp_path):
    path = fake_host(tmp_path, compose_works=True)
    assert plan(dry_run(tmp_path, "ubuntu-noble", assume_missing=False, path=path)) == ([], [])


def test_only_the_compose_plugin_where_only_it_is_missing(tmp_path):
    path = fake_host(tmp_path, compose_works=False, chromium=True)
    assert plan(dry_run(tmp_path, "ubuntu-jammy", assume_missing=False, path=path)) == (["docker-compose-v2"], [])
    assert plan(dry_run(tmp_path, "debian-bookworm", assume_missing=False, path=path)) == (
        ["docker-compose/trixie"], TRIXIE)


def test_debian_installs_a_missing_chromium(tmp_path):
    path = fake_host(tmp_path, compose_works=True)
    assert plan(dry_run(tmp_path, "debian-bookworm", assume_missing=False, path=path)) == (
        ["chromium", "chromium-driver"], [])


def test_fedora_with_everything_there_is_not_refused(tmp_path):
    path = fake_host(tmp_path, compose_works=True, chromium=True)
    assert plan(dry_run(tmp_path, "fedora", assume_missing=False, path=path)) == ([], [])


def test_debian_without_apt_get_is_refused_naming_what_to_install(tmp_path):
    result = dry_run(tmp_path, "debian-trixie", assume_missing=False, path=fake_host(tmp_path, compose_works=False, apt=False))
    assert result.returncode == 3
    assert "no apt-get: install by hand Chromium, chromedriver, the Docker Compose v2 plugin, then run this again" in result.stderr
