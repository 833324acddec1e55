"""scripts/aws-dump.sh against a fake `aws` first on PATH: read-only calls only, for one region and one VPC,
and a folder in lab/aws/dump.py's layout (the fixture tests/data/account is what the fake prints)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.aws.account import import_dump, load_dump

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "aws-dump.sh"
FIXTURE = ROOT / "tests" / "data" / "account"
REGION, VPC = "eu-west-1", "vpc-0a1b2c3d4e5f60720"

# The fake AWS CLI: records its arguments (one JSON line per call) and prints the fixture's answer to the calls
# the dump makes; anything else fails as the CLI does for an unknown operation.
FAKE_AWS = r'''
import json, os, sys
from pathlib import Path

args = sys.argv[1:]
with open(os.environ["FAKE_AWS_LOG"], "a") as log:
    log.write(json.dumps(args) + "\n")
fixture = Path(os.environ["FAKE_AWS_FIXTURE"])

def option(name):
    return args[args.index(name) + 1] if name in args else None

def answer(path):
    sys.stdout.write(path.read_text())
    sys.exit(0)

service, operation = args[0], args[1]
if service == "ec2" and (fixture / f"{operation}.json").exists():
    answer(fixture / f"{operation}.json")
if service == "network-firewall":
    firewall = json.loads((fixture / "describe-firewall.json").read_text())["Firewall"]
    if operation == "list-firewalls":
        listed = [] if os.environ.get("FAKE_AWS_NO_FIREWALL") else [
            {"FirewallName": firewall["FirewallName"], "FirewallArn": firewall["FirewallArn"]}]
        print(json.dumps({"Firewalls": listed}, indent=4))
        sys.exit(0)
    if operation == "describe-firewall" and option("--firewall-arn") in (firewall["FirewallArn"], None) \
            and option("--firewall-name") in (firewall["FirewallName"], None):
        answer(fixture / "describe-firewall.json")
    if operation == "describe-firewall-policy" and option("--firewall-policy-arn") == firewall["FirewallPolicyArn"]:
        answer(fixture / "describe-firewall-policy.json")
    if operation == "describe-rule-group":
        for path in fixture.glob("describe-rule-group-*.json"):
            if json.loads(path.read_text())["RuleGroupResponse"]["RuleGroupArn"] == option("--rule-group-arn"):
                answer(path)
    if operation == "describe-logging-configuration" and option("--firewall-arn") == firewall["FirewallArn"]:
        answer(fixture / "describe-logging-configuration.json")
print(f"An error occurred (ResourceNotFoundException) when calling {operation}: fake aws has no answer",
      file=sys.stderr)
sys.exit(254)
'''


@pytest.fixture
def fake_aws(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    aws = bin_dir / "aws"
    aws.write_text(f"#!{sys.executable}\n" + FAKE_AWS)
    aws.chmod(0o755)
    log = tmp_path / "calls.jsonl"
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_AWS_LOG": str(log),
           "FAKE_AWS_FIXTURE": str(FIXTURE)}

    def run(*args, **extra_env):
        result = subprocess.run(["bash", str(SCRIPT), *args], env={**env, **extra_env}, capture_output=True,
                                text=True, timeout=60)
        calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        return result, calls
    return run


def test_the_script_makes_only_read_only_calls_for_the_region_and_vpc_and_writes_the_dump_layout(fake_aws, tmp_path):
    out = tmp_path / "dump"
    result, calls = fake_aws("--region", REGION, "--vpc-id", VPC, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert calls
    for call in calls:
        assert call[0] in ("ec2", "network-firewall"), call
        assert call[1].startswith(("describe-", "list-")), call
        assert call[call.index("--region") + 1] == REGION, call
        assert call[call.index("--output") + 1] == "json", call
    by_operation = {c[1]: c for c in calls}
    vpc_filter = f"Name=vpc-id,Values={VPC}"
    for operation in ("describe-subnets", "describe-route-tables", "describe-instances", "describe-network-interfaces"):
        call = by_operation[operation]
        assert call[call.index("--filters") + 1] == vpc_filter, call
    nat = by_operation["describe-nat-gateways"]
    assert nat[nat.index("--filter") + 1] == vpc_filter  # this call's option is singular
    igw = by_operation["describe-internet-gateways"]
    assert igw[igw.index("--filters") + 1] == f"Name=attachment.vpc-id,Values={VPC}"
    for operation in ("describe-vpcs", "list-firewalls"):
        call = by_operation[operation]
        assert call[call.index("--vpc-ids") + 1] == VPC
    group = by_operation["describe-rule-group"]
    assert group[group.index("--rule-group-arn") + 1] == \
        "arn:aws:network-firewall:eu-west-1:111122223333:stateful-rulegroup/egress-allow"

    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(p.name for p in FIXTURE.glob("*.json"))  # the layout, no leftovers
    for name in written:
        assert json.loads((out / name).read_text()) == json.loads((FIXTURE / name).read_text()), name
    imported = import_dump(load_dump(out), str(out))
    assert [e["id"] for e in imported.topology["firewall"]["endpoints"]] == ["vpce-0e1f2a3b4c5d61001",
                                                                           "vpce-0e1f2a3b4c5d61002"]


def test_a_named_firewall_is_described_by_name_without_listing(fake_aws, tmp_path):
    result, calls = fake_aws("--region", REGION, "--vpc-id", VPC, "--firewall-name", "egress-firewall",
                             "--out", str(tmp_path / "dump"))
    assert result.returncode == 0, result.stderr
    assert "list-firewalls" not in [c[1] for c in calls]
    describe = next(c for c in calls if c[1] == "describe-firewall")
    assert describe[describe.index("--firewall-name") + 1] == "egress-firewall"


def test_a_vpc_without_a_firewall_is_refused_before_anything_else_is_read(fake_aws, tmp_path):
    out = tmp_path / "dump"
    result, calls = fake_aws("--region", REGION, "--vpc-id", VPC, "--out", str(out), FAKE_AWS_NO_FIREWALL="1")
    assert result.returncode == 1
    assert f"no AWS Network Firewall in {VPC}" in result.stderr
    assert [c[1] for c in calls] == ["list-firewalls"]
    assert not list(out.glob("*.json"))


def test_a_failed_call_leaves_no_partial_file_and_stops_the_dump(fake_aws, tmp_path):
    out = tmp_path / "dump"
    result, _ = fake_aws("--region", REGION, "--vpc-id", VPC, "--firewall-name", "another-firewall", "--out", str(out))
    assert result.returncode != 0
    assert "fake aws has no answer" in result.stderr
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("args", [[], ["--region", REGION, "--vpc-id", VPC], ["--region", REGION, "--out", "x"],
                                  ["--region", REGION, "--vpc-id", VPC, "--out", "x", "--profile", "p"]])
def test_missing_or_unknown_arguments_print_the_usage(fake_aws, args):
    result, calls = fake_aws(*args)
    assert result.returncode == 2 and "usage:" in result.stderr
    assert calls == []


def test_a_bad_vpc_id_is_refused(fake_aws, tmp_path):
    result, calls = fake_aws("--region", REGION, "--vpc-id", "my-vpc", "--out", str(tmp_path / "d"))
    assert result.returncode == 1 and "is not a VPC id" in result.stderr and calls == []


def test_the_header_lists_the_iam_permissions_of_every_call_it_makes():
    text = SCRIPT.read_text()
    header = text.split("set -euo pipefail")[0]
    for permission in ("ec2:DescribeVpcs", "ec2:DescribeSubnets", "ec2:DescribeRouteTables", "ec2:DescribeNatGateways",
                       "ec2:DescribeInternetGateways", "ec2:DescribeAddresses", "ec2:DescribeInstances",
                       "ec2:DescribeNetworkInterfaces", "network-firewall:ListFirewalls",
                       "network-firewall:DescribeFirewall", "network-firewall:DescribeFirewallPolicy",
                       "network-firewall:DescribeRuleGroup", "network-firewall:DescribeLoggingConfiguration"):
        assert permission in header
