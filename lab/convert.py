"""Convert: a Classic policy as a Next Generation policy that decides the same, and what cannot carry over.

AWS: the IPS engine "inspects traffic for threats using Suricata compatible rules, in the same way as the
stateful rules engine in a Classic Network Firewall policy", evaluated "by action order". So:

- every stateful rule group becomes an IPS rule group with the same rules (a domain list: the rules AWS
  generates from it), referenced by the policy (RuleGroups list), keeping its variables and its
  DROP_TO_ALERT override;
- the firewall section is empty and its default action ACCEPT: the firewall engine lets every flow through
  to the IPS engine, as the Classic stateless engine's aws:forward_to_sfe did;
- HOME_NET, the TCP idle timeout and the stream exception policy (DROP or REJECT) carry over.

What does not carry over is listed, each with what to do instead: strict rule order (the IPS engine uses
action order), the stateful default actions, stateless rule groups and custom actions, a stream exception
policy of CONTINUE.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .policy import STRICT_ORDER, Policy

ARN = "arn:aws:network-firewall:{region}:{account}:stateful-rulegroup/{name}"


@dataclass(frozen=True)
class Converted:
    document: dict[str, Any]  # describe-firewall-policy-v2's shape, plus the lab's RuleGroups list
    lost: tuple[str, ...]  # what does not carry over, and what to do instead
    notes: tuple[str, ...]  # what carries over in another form


def convert(policy: Policy, region: str = "us-east-1", account: str = "111122223333") -> Converted:
    """The Next Generation policy that decides as `policy` does, where it can."""
    lost: list[str] = []
    notes: list[str] = []
    groups, entries = [], []
    for ref in policy.groups:
        g = ref.group
        rules = "\n".join(r.text for r in g.rules)
        variables = {}
        if g.ip_sets:
            variables["IPSets"] = {k: {"Definition": list(v)} for k, v in g.ip_sets.items()}
        if g.port_sets:
            variables["PortSets"] = {k: {"Definition": list(v)} for k, v in g.port_sets.items()}
        groups.append({"RuleGroupName": g.name,
                       "RuleGroupResponse": {"RuleGroupName": g.name, "Type": "IPS", "Capacity": max(len(g.rules), 1),
                                             "Description": f"converted from the Classic stateful rule group {g.name} "
                                                            f"({g.kind})"},
                       "IpsRuleGroup": {"RulesSource": {"RulesString": rules},
                                        **({"RuleVariables": variables} if variables else {})}})
        entry: dict[str, Any] = {"ResourceArn": ARN.format(region=region, account=account, name=g.name)}
        if ref.override:
            entry["Override"] = {"Action": ref.override}
        entries.append(entry)
        if g.domain_list is not None:
            notes.append(f"rule group {g.name}: its domain list became the Suricata rules AWS generates from it (IPS "
                        "rule groups take rule strings only); a firewall rule group with a RulesSourceList is the "
                        "Next Generation way to write it")
    if policy.rule_order == STRICT_ORDER:
        lost.append("StatefulEngineOptions.RuleOrder STRICT_ORDER: the IPS engine evaluates by action order (pass, "
                    "drop, reject, alert), so a drop or alert written before a pass that matches the same traffic "
                    "now loses to the pass; to keep an order, write those rules in the firewall section, which "
                    "evaluates rules in the order written")
    if policy.default_actions:
        lost.append(f"StatefulDefaultActions {', '.join(policy.default_actions)}: no such setting; the firewall "
                    "engine's FirewallDefaultAction (DROP) with accept rules for the traffic you allow is its "
                    "Next Generation form")
    stateless = policy.stateless
    if stateless.in_use:
        lost.append("the stateless engine (StatelessRuleGroupReferences, StatelessDefaultActions, "
                    "StatelessFragmentDefaultActions, custom actions): a Next Generation policy has none; write its "
                    "pass and drop rules as firewall rules at the packet layer (tcp:all, udp:all)")
    stream = policy.stream_exception_policy
    if stream == "CONTINUE":
        lost.append("StreamExceptionPolicy CONTINUE: \"A Next Generation policy supports only the Drop and Reject "
                    "stream exception policy options\"; the converted policy uses REJECT, AWS's default")
        stream = "REJECT"
    v2: dict[str, Any] = {"FirewallDefaultAction": "ACCEPT", "PolicyMode": "ENFORCE",
                          "FirewallRuleGroupEntries": [], "IpsRuleGroupEntries": entries,
                          "StatefulEngineOptions": {"StreamExceptionPolicy": stream}}
    if policy.tcp_idle_timeout:
        v2["StatefulEngineOptions"]["FlowTimeouts"] = {"TcpIdleTimeoutSeconds": policy.tcp_idle_timeout}
    if policy.home_net:
        v2["PolicyVariables"] = {"RuleVariables": {"HOME_NET": {"Definition": list(policy.home_net)}}}
    document = {"FirewallPolicyV2Name": policy.name, "FirewallPolicyV2": v2, "RuleGroups": groups,
                "FirewallPolicyV2Response": {"FirewallPolicyV2Name": policy.name,
                                             "Description": f"converted by nfwlab from {policy.source}"}}
    return Converted(document, tuple(lost), tuple(notes))
