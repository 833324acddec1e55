"""Shared test data: malformed topology files (used by the unit tests of the model, and by the
integration test that checks nothing is created when `up` refuses one).

The session's labs keep their archives (`down` without --purge) in a folder of the session's own, removed at
its end, never in /var/lib/nfwlab/archive."""
import copy
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml

_ARCHIVE_ROOT = "NFWLAB_ARCHIVE_ROOT"
_SAVED = pytest.StashKey[tuple[str | None, str]]()


def pytest_configure(config):
    """Before any lab: `down` archives to a folder of this session's (each xdist worker its own)."""
    folder = tempfile.mkdtemp(prefix="nfwlab-archive-")
    config.stash[_SAVED] = (os.environ.get(_ARCHIVE_ROOT), folder)
    os.environ[_ARCHIVE_ROOT] = folder


def pytest_unconfigure(config):
    before, folder = config.stash[_SAVED]
    shutil.rmtree(folder, ignore_errors=True)
    if before is None:
        os.environ.pop(_ARCHIVE_ROOT, None)
    else:
        os.environ[_ARCHIVE_ROOT] = before

TOPOLOGY = Path(__file__).resolve().parent.parent / "topologies" / "nat-first.yaml"

# id, changes to topologies/nat-first.yaml (dotted path -> new value; None deletes), expected message
MALFORMED_TOPOLOGIES = [
    ("subnet-outside-vpc", {"subnets.0.cidr": "10.1.0.0/20"}, "subnets[0].cidr: 10.1.0.0/20 is outside the VPC CIDR"),
    ("subnets-overlap", {"subnets.1.cidr": "10.0.0.0/24"}, "overlaps subnet public"),
    ("duplicate-address", {"servers.1.ip": "10.0.136.108"}, "servers[1].ip: 10.0.136.108 is already used by server-a"),
    ("address-outside-subnet", {"servers.0.ip": "10.0.200.1"}, "outside subnet private"),
    ("aws-reserved-address", {"servers.0.ip": "10.0.128.1"}, "reserved by AWS"),
    ("unknown-subnet", {"servers.0.subnet": "nowhere"}, "servers[0].subnet: no subnet named 'nowhere'"),
    ("elastic-ip-private", {"nat_gateways.0.elastic_ip": "10.1.2.3"}, "10.1.2.3 is not a public address"),
    ("missing-elastic-ip", {"nat_gateways.0.elastic_ip": None}, "nat_gateways[0].elastic_ip: missing"),
    ("unknown-route-target", {"route_tables.0.routes.1.target": "nat-gw-2"}, "unknown target 'nat-gw-2'"),
    ("target-in-another-vpc", {"route_tables.0.routes.1.target": "tgw-0a1b2c3d4e5f67890"},
     "tgw-0a1b2c3d4e5f67890 is not in this VPC"),
    ("route-table-associated-twice", {"route_tables.1.associations": ["public", "private"]},
     "private is already associated with route table private-rtb"),
    ("subnet-without-route-table", {"route_tables.0": None}, "subnet private has no route table"),
    ("subnet-name-too-long-for-linux", {"subnets.2.name": "private-servers", "servers.0.subnet": "private-servers"},
     "can't name the subnet's bridge in Linux"),
    ("node-name-too-long-for-linux", {"servers.0.name": "application-server-a"}, "can't be a node name"),
    ("node-name-taken", {"servers.1.name": "nat-gateway"}, "the name 'nat-gateway' is already taken"),
    ("two-endpoints-in-one-az", {"firewall.endpoints": [
        {"name": "fw-1", "id": "vpce-01", "subnet": "firewall", "ip": "10.0.16.10"},
        {"name": "fw-2", "id": "vpce-02", "subnet": "public", "ip": "10.0.0.20"}]},
     "the firewall already has an endpoint in ap-northeast-1a"),
    ("edge-route-to-nat-gateway", {"route_tables.3.routes.1.target": "nat-gateway"},
     "an edge route table can only route to a firewall endpoint"),
    ("misspelt-field", {"nat_gateway": {"name": "x"}}, "nat_gateway: unknown field"),
    ("bad-vpc-cidr", {"vpc.cidr": "10.0.0.0/33"}, "not an IPv4 CIDR"),
    ("local-route-elsewhere", {"route_tables.0.routes.0.destination": "10.0.0.0/8"}, "the local route covers"),
    ("duplicate-route", {"route_tables.0.routes.1.destination": "10.0.0.0/16", "route_tables.0.routes.1.target":
                         "nat-gateway"}, "10.0.0.0/16 is the local route's destination"),
    ("bad-domain", {"internet.domains": ["bad name"]}, "not a valid domain"),
    ("server-count-without-number", {"servers.1": {"name": "app", "subnet": "private", "ip": "10.0.130.10",
                                                   "count": 3}}, "with count, the name needs {n}"),
    ("server-count-runs-into-another", {"servers.1": {"name": "app-{n}", "subnet": "private",
                                                      "ip": "10.0.136.100", "count": 10}},
     "10.0.136.108 is already used by server-a"),
]


def malformed_topology(changes: dict) -> dict:
    """topologies/nat-first.yaml's content with `changes` applied."""
    data = yaml.safe_load(TOPOLOGY.read_text())
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = data
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        key = int(last) if isinstance(node, list) else last
        if value is None:
            del node[key]
        else:
            node[key] = copy.deepcopy(value)
    return data


def pytest_generate_tests(metafunc):
    if "malformed" in metafunc.fixturenames:
        metafunc.parametrize("malformed", [(malformed_topology(c), m) for _, c, m in MALFORMED_TOPOLOGIES],
                             ids=[i for i, _, _ in MALFORMED_TOPOLOGIES])
