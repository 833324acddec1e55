"""The CLI's AWS commands: `serve` (the local AWS endpoint), `import` (an account dump or Terraform), `export`."""
from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from ..documents import read_document
from ..errors import ConfigError, StateError


def _say(line: str) -> None:
    print(line, flush=True)


def cmd_serve(args: Any) -> int:
    from ..lab import Lab
    from .serve import Service
    if Lab(args.name).topology_name:
        raise StateError(f"lab {args.name} is already up; `nfwlab serve` brings up its own lab from the endpoint's "
                         "state", f"serve another lab: `nfwlab --name OTHER serve`, or take this one down first: "
                         f"`nfwlab --name {args.name} down`")
    service = Service(args.name, args.port, settle=args.settle, log=_say)
    service.start()
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    _say(f"nfwlab serve: AWS endpoint on {service.url} for lab {args.name} (EC2 and STS: moto; Network Firewall: "
         "the lab's own)")
    _say(f"  point Terraform's provider `endpoints` (ec2, networkfirewall, sts) or `aws --endpoint-url` at it; "
         f"progress: {service.url}/_nfwlab/status; Ctrl-C stops" + ("" if args.keep else " and takes the lab down"))
    stopped.wait()
    _say("nfwlab serve: stopping" + ("" if args.keep else f"; taking lab {args.name} down"))
    service.stop(take_down=not args.keep)
    return 0


def cmd_import(args: Any) -> int:
    from .account import import_dump, load_dump, write_imported
    source = Path(args.source)
    if args.terraform:
        from .terraform import dump_from_terraform
        if args.source == "-":
            try:
                document = json.loads(sys.stdin.read())
            except ValueError as e:
                raise ConfigError(f"standard input: not JSON ({e})", "pipe `terraform show -json [PLANFILE]` "
                                  "into it") from None
        else:
            document = read_document(source, "`terraform show -json` output")
        dump = dump_from_terraform(document, str(source))
    else:
        dump = load_dump(source)
    # standard input has no name to lend the files: they are named after Terraform
    default_name = ("terraform" if args.source == "-" else source.stem) if args.terraform else source.resolve().name
    name = args.out_name or default_name
    imported = import_dump(dump, str(source), vpc_id=args.vpc_id, name=name)
    topology, policy = write_imported(imported, Path(args.out), name, force=args.force)
    if args.json:
        print(json.dumps({"topology": str(topology), "policy": str(policy), "notes": imported.notes}, indent=2))
        return 0
    print(f"imported {source}: topology {topology}, policy {policy}")
    for note in imported.notes:
        print(f"  note: {note}")
    print(f"  run it: `nfwlab --name {args.name} up --topology {topology} --policy {policy}`")
    return 0


def cmd_export(args: Any) -> int:
    from ..lab import Lab
    from .export import dump_from_lab, policy_document, terraform_from_lab, write_dump
    lab = Lab(args.name)
    if not lab.topology_name:
        raise StateError(f"lab {args.name} is not up", f"start it first: `nfwlab --name {args.name} up`")
    policy_file = lab.state.read().policy.get("source")
    if not policy_file:
        raise StateError(f"lab {args.name} does not record its policy file", "take it down and up again")
    document = policy_document(Path(policy_file))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if args.format in ("describe", "both"):
        written += write_dump(dump_from_lab(lab.topology, document), out / "describe")
    if args.format in ("terraform", "both"):
        tf = out / "terraform" / "main.tf"
        tf.parent.mkdir(parents=True, exist_ok=True)
        tf.write_text(terraform_from_lab(lab.topology, document))
        written.append(tf)
    if args.json:
        print(json.dumps({"written": [str(p) for p in written]}, indent=2))
    else:
        print(f"exported lab {args.name} ({lab.topology_name}) to {out}: {len(written)} file(s)")
        for p in written:
            print(f"  {p}")
    return 0


def add_commands(add: Any) -> None:
    """Adds serve, import and export to the CLI (`add` is cli.parser's helper)."""
    sp = add("serve", cmd_serve, "a local AWS endpoint (EC2, STS, Network Firewall) on 127.0.0.1: Terraform and "
             "the AWS CLI build the VPC and its firewall there, and the lab runs it (Ctrl-C stops)", json_flag=False)
    sp.add_argument("--port", type=int, default=4566, help="port on 127.0.0.1 (default 4566)")
    sp.add_argument("--settle", type=float, default=1.0, help="seconds without a change before the lab follows "
                    "the endpoint's state (default 1)")
    sp.add_argument("--keep", action="store_true", help="leave the lab up when the endpoint stops")
    sp = add("import", cmd_import, "a topology and a policy from an AWS account's describe-* output (a folder "
             "written by scripts/aws-dump.sh) or from `terraform show -json` (--terraform)")
    sp.add_argument("source", metavar="DIR|FILE", help="the dump folder, or with --terraform the JSON file "
                    "(- for standard input)")
    sp.add_argument("--terraform", action="store_true", help="SOURCE is `terraform show -json` output (plan or "
                    "state)")
    sp.add_argument("--vpc-id", help="the VPC to import (default: the firewall's)")
    sp.add_argument("--out", "-o", default=".", help="folder for TOPOLOGY.yaml and its policy (default: here)")
    sp.add_argument("--out-name", metavar="NAME", help="the files' name (default: the folder's or file's name)")
    sp.add_argument("--force", action="store_true", help="overwrite files that exist")
    sp = add("export", cmd_export, "write the running lab as Terraform and as the describe-* JSON an account "
             "dump holds (so `nfwlab import` reads it back)")
    sp.add_argument("--out", "-o", required=True, help="folder to write (describe/ and terraform/ inside)")
    sp.add_argument("--format", choices=["describe", "terraform", "both"], default="both")
