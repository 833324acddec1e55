#!/bin/sh
# Run Suricata inline on NFQUEUE 0 (IPS mode). The lab installs the
# FORWARD -> NFQUEUE rule without --queue-bypass, so while this process is not
# running nothing crosses the firewall (fail closed, as AWS Network Firewall).
set -eu
: "${NFWLAB_HOME_NET:?}"
mkdir -p /var/log/suricata /var/run/suricata
exec suricata -c /etc/nfwlab/suricata/suricata.yaml -q 0 \
  --init-errors-fatal \
  --set "vars.address-groups.HOME_NET=[${NFWLAB_HOME_NET}]" \
  -S /etc/nfwlab/rules/lab.rules \
  -l /var/log/suricata
