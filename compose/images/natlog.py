#!/usr/bin/env python3
"""The NAT gateway node's main process: a translation log, like VPC Flow Logs' pkt-srcaddr.

Follows the node's connection tracking events (`conntrack -E -o xml`) and
writes one JSON line per translated connection, when it starts (NEW) and when
it ends (DESTROY): the original source and port (the server), the translated
source and port (this NAT gateway), the destination, and the time. All NAT
gateways of a lab append to the same file; `nfwlab who` joins it with the
firewall's alerts to name the server behind an alert. The file is rotated by
size (NFWLAB_LOG_MAX_SIZE, NFWLAB_LOG_KEEP) by whichever NAT gateway's write
takes it over the limit (nfwlab_logfile.py).
"""
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # nfwlab_logfile.py is beside this script
import nfwlab_logfile  # noqa: E402

NAME = os.environ.get("NFWLAB_NAT_NAME", "nat-gateway")
NAT_ID = os.environ.get("NFWLAB_NAT_ID", "")
LOG = os.path.join(os.environ.get("NFWLAB_AWS_LOG_DIR", "/var/log/nfwlab"), "nat-translations.log")


def endpoints(meta):
    l3, l4 = meta.find("layer3"), meta.find("layer4")
    return {"src": l3.findtext("src"), "dst": l3.findtext("dst"),
            "sport": int(l4.findtext("sport") or 0), "dport": int(l4.findtext("dport") or 0),
            "proto": l4.get("protoname")}


def record(line, now):
    """A translation record for one conntrack event line, or None when nothing was translated."""
    flow = ET.fromstring(line)
    metas = {m.get("direction"): m for m in flow.findall("meta")}
    if "original" not in metas or "reply" not in metas:
        return None
    orig, reply = endpoints(metas["original"]), endpoints(metas["reply"])
    if reply["dst"] == orig["src"] and reply["dport"] == orig["sport"]:
        return None  # not source-NATed (e.g. traffic to the NAT gateway itself)
    independent = metas.get("independent")
    return {"nat_gateway": NAME, "nat_gateway_id": NAT_ID, "event": flow.get("type", "").upper(),
            "timestamp": datetime.fromtimestamp(now, UTC).isoformat(timespec="microseconds"),
            "epoch": round(now, 6), "proto": orig["proto"],
            "original": {"src": orig["src"], "sport": orig["sport"]},
            "translated": {"src": reply["dst"], "sport": reply["dport"]},
            "destination": {"dst": orig["dst"], "dport": orig["dport"]},
            "conntrack_id": int(independent.findtext("id")) if independent is not None and
            independent.findtext("id") else None}


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    os.makedirs(os.path.dirname(LOG), exist_ok=True)
    out = nfwlab_logfile.RotatingLog(LOG, *nfwlab_logfile.limits_from_env())  # one locked write per line: shared
    proc = subprocess.Popen(["conntrack", "-E", "-o", "xml,id", "-e", "NEW,DESTROY"], stdout=subprocess.PIPE,
                            text=True, bufsize=1)
    print(f"nfwlab-natlog: {NAME} logging translations to {LOG}", flush=True)
    for line in proc.stdout:
        line = line.strip()
        if not line.startswith("<flow"):
            continue
        try:
            rec = record(line.removesuffix("</conntrack>"), time.time())
        except (ET.ParseError, AttributeError, ValueError):
            continue
        if rec:
            out.write(json.dumps(rec, separators=(",", ":")) + "\n")
    return proc.wait()


if __name__ == "__main__":
    sys.exit(main())
