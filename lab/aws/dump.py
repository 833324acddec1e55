"""An account dump: the JSON that read-only AWS CLI calls print, one file per call, in one folder.

The same shapes come back from boto3 (the endpoint's reconciler reads its own state this way) and are written by
`nfwlab export`, so one importer serves a real account, `nfwlab serve` and a round trip.

Files (the call's name, `.json`); each holds exactly what `aws ... --output json` prints:
  ec2 describe-vpcs                       -> describe-vpcs.json               {"Vpcs": [...]}
  ec2 describe-subnets                    -> describe-subnets.json            {"Subnets": [...]}
  ec2 describe-route-tables               -> describe-route-tables.json       {"RouteTables": [...]}
  ec2 describe-nat-gateways               -> describe-nat-gateways.json       {"NatGateways": [...]}
  ec2 describe-internet-gateways          -> describe-internet-gateways.json  {"InternetGateways": [...]}
  ec2 describe-addresses                  -> describe-addresses.json          {"Addresses": [...]}
  ec2 describe-instances                  -> describe-instances.json          {"Reservations": [...]}
  ec2 describe-network-interfaces         -> describe-network-interfaces.json {"NetworkInterfaces": [...]}
      (optional: gives the firewall endpoints' private addresses)
  network-firewall describe-firewall      -> describe-firewall.json
                                                      {"UpdateToken", "Firewall", "FirewallStatus"}
  network-firewall describe-firewall-policy (or -v2 for a Next Generation policy)
                                          -> describe-firewall-policy.json    {"UpdateToken", "FirewallPolicyResponse",
                                                                               "FirewallPolicy"} (or the V2 keys)
  network-firewall describe-rule-group    -> describe-rule-group-<RuleGroupName>.json, one per group
                                                      {"UpdateToken", "RuleGroup", "RuleGroupResponse"}
  network-firewall describe-logging-configuration
                                          -> describe-logging-configuration.json (optional)
In Python a dump is a dict from the file's stem to its parsed JSON; the rule groups are one entry,
"describe-rule-group", holding the list of every group's output.
"""
from __future__ import annotations

from typing import Any

Dump = dict[str, Any]

EC2_CALLS = ("describe-vpcs", "describe-subnets", "describe-route-tables", "describe-nat-gateways",
             "describe-internet-gateways", "describe-addresses", "describe-instances")
OPTIONAL_EC2_CALLS = ("describe-network-interfaces",)
FIREWALL_CALLS = ("describe-firewall", "describe-firewall-policy")
RULE_GROUPS = "describe-rule-group"
OPTIONAL_FIREWALL_CALLS = ("describe-logging-configuration",)

# The lists of a firewall policy's document that reference rule groups: a Classic policy's (FirewallPolicy)
# stateless and stateful references, a Next Generation policy's (FirewallPolicyV2) firewall and IPS sections.
REFERENCE_LISTS = {False: ("StatelessRuleGroupReferences", "StatefulRuleGroupReferences"),
                   True: ("FirewallRuleGroupEntries", "IpsRuleGroupEntries")}


def rule_group_references(body: Any, v2: bool) -> list[tuple[str, int, dict[str, Any]]]:
    """(list, index, entry) for every rule group entry of a policy's document (`body`: the FirewallPolicy or
    FirewallPolicyV2 object). A Next Generation entry may be an inline group, with no ResourceArn."""
    if not isinstance(body, dict):
        return []
    return [(key, i, entry) for key in REFERENCE_LISTS[v2] for i, entry in enumerate(body.get(key) or [])
            if isinstance(entry, dict)]

