#!/usr/bin/env bash
# Dump one VPC and its AWS Network Firewall, read-only, for `nfwlab import` (lab/aws/account.py).
#
#   scripts/aws-dump.sh --region REGION --vpc-id VPC_ID [--firewall-name NAME] --out DIR
#
# Writes one JSON file per AWS CLI call into DIR, exactly what `aws ... --output json` prints, in the layout of
# lab/aws/dump.py: describe-vpcs.json, describe-subnets.json, describe-route-tables.json,
# describe-nat-gateways.json, describe-internet-gateways.json, describe-addresses.json, describe-instances.json,
# describe-network-interfaces.json, describe-firewall.json, describe-firewall-policy.json (the -v2 call's output
# for a Next Generation policy), describe-rule-group-<RuleGroupName>.json per referenced rule group, and
# describe-logging-configuration.json. Without --firewall-name, the VPC's firewall is found with
# `aws network-firewall list-firewalls --vpc-ids`. EC2 calls are limited to the VPC with a vpc-id filter where the
# call takes one (describe-addresses has none: it lists the region's Elastic IPs).
#
# Only describe and list calls: nothing in the account changes. IAM permissions it needs (all read-only):
#   ec2:DescribeVpcs                ec2:DescribeSubnets              ec2:DescribeRouteTables
#   ec2:DescribeNatGateways         ec2:DescribeInternetGateways     ec2:DescribeAddresses
#   ec2:DescribeInstances           ec2:DescribeNetworkInterfaces
#   network-firewall:ListFirewalls  network-firewall:DescribeFirewall
#   network-firewall:DescribeFirewallPolicy (network-firewall:DescribeFirewallPolicyV2 for a Next Generation policy)
#   network-firewall:DescribeRuleGroup
#   network-firewall:DescribeLoggingConfiguration (optional: the dump notes where the firewall logs)
# Credentials and profile: the AWS CLI's own (AWS_PROFILE, environment, instance role ...).
set -euo pipefail

usage() {
    echo "usage: $0 --region REGION --vpc-id VPC_ID [--firewall-name NAME] --out DIR" >&2
    exit 2
}
die() {
    echo "aws-dump: $*" >&2
    exit 1
}

region="" vpc="" firewall_name="" out=""
while (($#)); do
    case "$1" in
        --region) region="${2-}"; shift 2 || usage ;;
        --vpc-id) vpc="${2-}"; shift 2 || usage ;;
        --firewall-name) firewall_name="${2-}"; shift 2 || usage ;;
        --out) out="${2-}"; shift 2 || usage ;;
        -h|--help) usage ;;
        *) echo "aws-dump: unknown argument $1" >&2; usage ;;
    esac
done
[[ -n "$region" && -n "$vpc" && -n "$out" ]] || usage
[[ "$vpc" =~ ^vpc-[0-9a-f]+$ ]] || die "--vpc-id $vpc is not a VPC id (vpc-...)"
[[ "$region" =~ ^[a-z]{2}(-[a-z]+)+-[0-9]+$ ]] || die "--region $region is not a region name (such as eu-west-1)"
command -v aws >/dev/null || die "the AWS CLI (aws) is not installed"
command -v python3 >/dev/null || die "python3 is needed to read the calls' JSON"

export AWS_PAGER=""  # never a pager: the output goes to files
mkdir -p "$out"

# save FILE ARGS...: `aws ARGS --region R --output json` into DIR/FILE, only when the call succeeds.
save() {
    local file="$1"
    shift
    local tmp="$out/.$file.partial"
    if aws "$@" --region "$region" --output json >"$tmp"; then
        mv "$tmp" "$out/$file"
        echo "aws-dump: $file" >&2
    else
        rm -f "$tmp"
        return 1
    fi
}

# json FILE EXPRESSION: a Python expression over the file's JSON (`d`), printed.
json() {
    python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
v = eval(sys.argv[2])
print("\n".join(v) if isinstance(v, list) else ("" if v is None else v))' "$@"
}

# The firewall first: without one in the VPC there is nothing to import.
if [[ -n "$firewall_name" ]]; then
    save describe-firewall.json network-firewall describe-firewall --firewall-name "$firewall_name"
else
    listing="$(aws network-firewall list-firewalls --vpc-ids "$vpc" --region "$region" --output json)"
    arns="$(python3 -c 'import json, sys
print("\n".join(f["FirewallArn"] for f in json.load(sys.stdin).get("Firewalls", [])))' <<<"$listing")"
    count="$(grep -c . <<<"$arns" || true)"
    ((count > 0)) || die "no AWS Network Firewall in $vpc ($region): nothing to import"
    ((count == 1)) || die "$count firewalls in $vpc: name one with --firewall-name ($(tr '\n' ' ' <<<"$arns"))"
    save describe-firewall.json network-firewall describe-firewall --firewall-arn "$arns"
fi
fw_vpc="$(json "$out/describe-firewall.json" 'd["Firewall"].get("VpcId")')"
[[ "$fw_vpc" == "$vpc" ]] || die "firewall $(json "$out/describe-firewall.json" 'd["Firewall"].get("FirewallName")') \
is in $fw_vpc, not in $vpc"
fw_arn="$(json "$out/describe-firewall.json" 'd["Firewall"]["FirewallArn"]')"
policy_arn="$(json "$out/describe-firewall.json" 'd["Firewall"]["FirewallPolicyArn"]')"

in_vpc=(--filters "Name=vpc-id,Values=$vpc")
save describe-vpcs.json ec2 describe-vpcs --vpc-ids "$vpc"
save describe-subnets.json ec2 describe-subnets "${in_vpc[@]}"
save describe-route-tables.json ec2 describe-route-tables "${in_vpc[@]}"
save describe-nat-gateways.json ec2 describe-nat-gateways --filter "Name=vpc-id,Values=$vpc"
save describe-internet-gateways.json ec2 describe-internet-gateways --filters "Name=attachment.vpc-id,Values=$vpc"
save describe-addresses.json ec2 describe-addresses
save describe-instances.json ec2 describe-instances "${in_vpc[@]}"
save describe-network-interfaces.json ec2 describe-network-interfaces "${in_vpc[@]}" \
    || echo "aws-dump: warning: no describe-network-interfaces.json: the import will guess the endpoints' addresses" >&2

# The policy: a Classic one, else a Next Generation one (describe-firewall-policy-v2), into the same file.
errors="$out/.describe-firewall-policy.errors"
if ! save describe-firewall-policy.json network-firewall describe-firewall-policy \
        --firewall-policy-arn "$policy_arn" 2>"$errors"; then
    if ! save describe-firewall-policy.json network-firewall describe-firewall-policy-v2 \
            --firewall-policy-v2-arn "$policy_arn"; then
        cat "$errors" >&2
        rm -f "$errors"
        die "can't describe the firewall's policy $policy_arn"
    fi
fi
rm -f "$errors"

# Every rule group the policy references, by ARN, into describe-rule-group-<name>.json.
groups="$(json "$out/describe-firewall-policy.json" '[e["ResourceArn"]
    for body in (d.get("FirewallPolicy") or {}, d.get("FirewallPolicyV2") or {})
    for key in ("StatelessRuleGroupReferences", "StatefulRuleGroupReferences", "FirewallRuleGroupEntries",
                "IpsRuleGroupEntries")
    for e in body.get(key) or [] if e.get("ResourceArn")]')"
while IFS= read -r arn; do
    [[ -n "$arn" ]] || continue
    save "describe-rule-group-${arn##*/}.json" network-firewall describe-rule-group --rule-group-arn "$arn"
done <<<"$groups"

save describe-logging-configuration.json network-firewall describe-logging-configuration --firewall-arn "$fw_arn" \
    || echo "aws-dump: warning: no describe-logging-configuration.json (optional)" >&2

echo "aws-dump: wrote $out; import it with: nfwlab import $out" >&2
