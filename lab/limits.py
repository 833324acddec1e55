"""AWS's limits on stateful rules: what AWS Network Firewall refuses even where Suricata would accept it.

From AWS's "Limitations and caveats for stateful rules in AWS Network Firewall" ("The following Suricata
features are not supported by Network Firewall") and the StatefulRule API reference ("REJECT is available
only for TCP traffic. This option doesn't support FTP or IMAP protocols."). Each refusal carries AWS's
reason. A rule group's capacity is counted as AWS counts it: one per rule, and for a domain list the rules
AWS generates from it.
"""
from __future__ import annotations

import re
from typing import Any

from .documents import Fields
from .order import ParsedRule, parse_rule

ACTIONS = ("pass", "drop", "reject", "alert")
MAX_CAPACITY = 30_000  # AWS's largest capacity of a rule group, and of a policy's stateless rule groups

_PROTOCOLS = {
    "sctp": "SCTP protocol",
    "ftp-data": "FTP-data protocol detection",
    "ikev2": "IKEv2 protocol",
    "ike": "IKEv2 protocol",
    "quic": "QUIC protocol detection and QUIC related application level protocols such as HTTP3",
    "enip": "ENIP/CIP keywords",
}
_KEYWORDS = {
    "dataset": "Datasets. The keywords dataset and datarep aren't allowed",
    "datarep": "Datasets. The keywords dataset and datarep aren't allowed",
    "iprep": "IP reputation. The iprep keyword is not allowed",
    "lua": "Lua scripting",
    "luajit": "Lua scripting",
    "threshold": "Thresholding",
    "detection_filter": "Thresholding",
    "geoip": "GeoIP",
    "hostbits": "xbits and hostbits with host or IP-level tracking (track ip_src, track ip_dst, or track ip_pair)",
    "filestore": "File extraction. File keywords aren't allowed",
    "filename": "File extraction. File keywords aren't allowed",
    "file.name": "File extraction. File keywords aren't allowed",
    "fileext": "File extraction. File keywords aren't allowed",
    "filemagic": "File extraction. File keywords aren't allowed",
    "file.magic": "File extraction. File keywords aren't allowed",
    "filemd5": "File extraction. File keywords aren't allowed",
    "filesha1": "File extraction. File keywords aren't allowed",
    "filesha256": "File extraction. File keywords aren't allowed",
    "filesize": "File extraction. File keywords aren't allowed",
    "enip_command": "ENIP/CIP keywords",
    "cip_service": "ENIP/CIP keywords",
}
_KEYWORD_PREFIXES = {"enip.": "ENIP/CIP keywords", "cip_": "ENIP/CIP keywords", "ike.": "IKEv2 protocol",
                     "quic.": "QUIC protocol detection and QUIC related application level protocols such as HTTP3"}


def refusal(rule: ParsedRule) -> str | None:
    """Why AWS refuses the rule, in AWS's words, or None."""
    if rule.action not in ACTIONS:
        return (f"AWS supports no rule action but pass, drop, reject and alert ({rule.action!r}: \"Rules actions "
                "except for pass, drop, reject, and alert\" are not supported)")
    if rule.action == "reject" and rule.protocol in ("ftp", "imap"):
        return f"AWS: REJECT \"doesn't support FTP or IMAP protocols\" (protocol {rule.protocol})"
    return option_refusal(rule)  # the protocols and keywords AWS refuses in any engine's rules


def option_refusal(rule: ParsedRule) -> str | None:
    """Why AWS refuses one of the rule's protocol or keywords (any engine's rule), or None."""
    protocol = rule.protocol.split(":")[0]
    if protocol in _PROTOCOLS:
        return f"AWS does not support {_PROTOCOLS[protocol]} (protocol {protocol})"
    for keyword, value in rule.options:
        reason = _KEYWORDS.get(keyword) or next((r for p, r in _KEYWORD_PREFIXES.items() if keyword.startswith(p)),
                                                None)
        if keyword == "xbits" and re.search(r"track\s+ip_", value or ""):
            reason = _KEYWORDS["hostbits"]
        if keyword == "tag" and (value or "").split(",")[0].strip() == "host":
            reason = "tag:host"
        if reason:
            return f"AWS does not support {reason} (keyword {keyword})"
    return None


def check_rule(text: str) -> str | None:
    """`refusal` for a rule's text; None for text that is not a rule (Suricata itself judges that)."""
    try:
        return refusal(parse_rule(text))
    except ValueError:
        return None


def check_capacity(doc: Fields, where: str, name: str, needed: int, declared: Any, counted: str) -> None:
    """A rule group needing more capacity than its declared `Capacity` (RuleGroupResponse), or than AWS's
    largest, is refused as AWS refuses it. `counted`: how AWS counts this kind of group's capacity."""
    if isinstance(declared, int) and needed > declared:
        raise doc.fail("RuleGroupResponse.Capacity", f"rule group {name} needs capacity {needed} but has "
                       f"{declared} (AWS refuses it: the capacity is fixed when the group is created)",
                       f"create the group with a larger Capacity ({counted})")
    if needed > MAX_CAPACITY:
        raise doc.fail(where, f"rule group {name} needs capacity {needed}, more than AWS's {MAX_CAPACITY}",
                       "split it into several rule groups")
