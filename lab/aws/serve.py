"""The local AWS endpoint: one port on 127.0.0.1 answering EC2 and STS through moto, and Network Firewall through
the lab's own API (lab/aws/networkfirewall.py). It knows HTTP and who may call it; what the calls mean to the lab
is the reconciler's (lab/aws/reconcile.py).

Only this machine's own clients are served: the Host header must name the endpoint's own address (a page that
rebinds a DNS name to 127.0.0.1 sends its own name), and a request that carries an Origin (every cross-origin
request a browser sends does; AWS SDKs and Terraform never send one) must come from the endpoint itself.
"""
from __future__ import annotations

import io
import itertools
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from ipaddress import IPv4Network
from typing import Any
from urllib.parse import parse_qs

from .networkfirewall import AwsError, NetworkFirewallApi

NETWORK_FIREWALL_TARGET = "NetworkFirewall_20201112."
CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")
STATUS_PATH = "/_nfwlab/status"
DEFAULT_PORT = 4566  # the port AWS emulators use, so endpoint settings written for them work here
DEFAULT_REGION = "us-east-1"
READ_ONLY = ("Describe", "Get", "List")  # EC2 actions that change nothing

Start = Callable[[str, list[tuple[str, str]]], Any]


class DocumentationAddresses:
    """Public addresses for moto to hand out (Elastic IPs, instances' public IPs), from the documentation ranges
    only, never twice: moto draws them at random from real public space, which the lab must never hold."""

    def __init__(self, *blocks: str):
        self._pool: Iterator[str] = itertools.chain.from_iterable(
            (str(a) for a in IPv4Network(b).hosts()) for b in blocks)
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            try:
                return next(self._pool)
            except StopIteration:
                raise AwsError("AddressLimitExceeded", "the lab's documentation ranges have no public address "
                               "left") from None

    def install(self) -> None:
        """Makes moto's EC2 backend draw from these addresses (module-level names it looks up at call time)."""
        from moto.ec2.models import elastic_ip_addresses, elastic_network_interfaces
        elastic_ip_addresses.random_ip = self
        elastic_network_interfaces.random_public_ip = self


def _json(start: Start, status: int, body: dict[str, Any], content_type: str = "application/json") -> list[bytes]:
    data = json.dumps(body, default=str).encode()
    reasons = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 500: "Internal Server Error"}
    start(f"{status} {reasons.get(status, 'Error')}", [
        ("Content-Type", content_type), ("Content-Length", str(len(data))), ("X-Content-Type-Options", "nosniff"),
        ("Cache-Control", "no-store")])
    return [data]


class Endpoint:
    """The WSGI application: Network Firewall to the lab's API, the lab's status, everything else to moto."""

    def __init__(self, api: NetworkFirewallApi, port: int, status: Callable[[], dict[str, Any]],
                 changed: Callable[[str], None] = lambda region: None,
                 moto_app: Callable[[dict[str, Any], Start], Iterable[bytes]] | None = None):
        """`changed(region)` is called after every EC2 request that may have changed something."""
        self.api, self.port, self.status, self.changed = api, port, status, changed
        if moto_app is None:
            from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
            moto_app = DomainDispatcherApplication(create_backend_app)
        self.moto = moto_app
        self.hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}
        self.origins = {f"http://{h}" for h in self.hosts}

    def __call__(self, environ: dict[str, Any], start: Start) -> Iterable[bytes]:
        host = environ.get("HTTP_HOST", "")
        if host not in self.hosts:
            mine = " or ".join(sorted(self.hosts))
            return _json(start, 403, {"__type": "AccessDeniedException",
                                      "message": f"Host {host!r} is not this endpoint ({mine})"})
        origin = environ.get("HTTP_ORIGIN")
        if origin is not None and origin not in self.origins:
            return _json(start, 403, {"__type": "AccessDeniedException",
                                      "message": f"requests from {origin} are refused: the endpoint serves this "
                                      "machine's AWS clients, not web pages"})
        path = environ.get("PATH_INFO", "/")
        if path == STATUS_PATH:
            return _json(start, 200, self.status())
        if path.startswith("/moto-api"):
            return _json(start, 404, {"__type": "NotFound", "message": "moto's own API is not served here"})
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith(NETWORK_FIREWALL_TARGET):
            return self._network_firewall(environ, start, target[len(NETWORK_FIREWALL_TARGET):])
        return self._moto(environ, start)

    def _network_firewall(self, environ: dict[str, Any], start: Start, operation: str) -> list[bytes]:
        scope = CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        region = scope.group(1) if scope else DEFAULT_REGION
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(length) if length else b"{}"
            request = json.loads(raw or b"{}")
            if not isinstance(request, dict):
                raise ValueError("the body is not a JSON object")
        except ValueError as e:
            return _json(start, 400, AwsError("SerializationException", f"the request body is not JSON: {e}").body(),
                         "application/x-amz-json-1.0")
        try:
            return _json(start, 200, self.api.handle(operation, region, request), "application/x-amz-json-1.0")
        except AwsError as e:
            return _json(start, e.status, e.body(), "application/x-amz-json-1.0")
        except Exception as e:  # a defect: answered as AWS answers its own, and logged by the server
            import traceback
            traceback.print_exc()
            return _json(start, 500, AwsError("InternalServerError", f"{type(e).__name__}: {e}", 500).body(),
                         "application/x-amz-json-1.0")

    def _moto(self, environ: dict[str, Any], start: Start) -> Iterable[bytes]:
        answered: list[str] = []

        def start_without_cors(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            answered.append(status)
            kept = [(k, v) for k, v in headers if not k.lower().startswith("access-control-")]
            return start(status, kept + [("X-Content-Type-Options", "nosniff")], *rest)
        scope = CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        action = ""
        if scope and scope.group(2) == "ec2":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
            query = environ.get("QUERY_STRING", "") + "&" + body.decode("utf-8", "replace")
            action = (parse_qs(query).get("Action") or [""])[0]
        answer = self.moto(environ, start_without_cors)
        if scope and action and not action.startswith(READ_ONLY) and answered and answered[0].startswith("200"):
            self.changed(scope.group(1))
        return answer


ACCOUNT = "123456789012"  # moto's default account: EC2's answers and the firewall's ARNs agree on it


def moto_subnet_zone(region: str, subnet_id: str) -> str | None:
    """A subnet's Availability Zone from moto's EC2 backend (None: no such subnet)."""
    from moto.backends import get_backend
    from moto.ec2.exceptions import InvalidSubnetIdError
    try:
        return str(get_backend("ec2")[ACCOUNT][region].get_subnet(subnet_id).availability_zone)
    except InvalidSubnetIdError:
        return None


def sync_gateway_endpoints(region: str, snapshot: dict[str, Any]) -> None:
    """Gives moto's EC2 the firewall's endpoints as Gateway Load Balancer endpoints with the ids the firewall
    reports (AWS makes one per mapped subnet), so routes can target them; removes those of endpoints gone."""
    from moto.backends import get_backend
    from moto.ec2.models.vpcs import VPCEndPoint
    ec2 = get_backend("ec2")[ACCOUNT][region]
    wanted: dict[str, tuple[str, str]] = {}
    for described in snapshot["firewalls"]:
        vpc = described["Firewall"]["VpcId"]
        for state in (described.get("FirewallStatus") or {}).get("SyncStates", {}).values():
            attachment = state.get("Attachment") or {}
            if attachment.get("EndpointId"):
                wanted[attachment["EndpointId"]] = (vpc, attachment["SubnetId"])
    for endpoint_id, made in list(ec2.vpc_end_points.items()):
        if made.vpc_endpoint_type == "GatewayLoadBalancer" and made.service_name.startswith(FIREWALL_SERVICE) \
                and endpoint_id not in wanted:
            del ec2.vpc_end_points[endpoint_id]
    for endpoint_id, (vpc, subnet) in wanted.items():
        if endpoint_id not in ec2.vpc_end_points:
            ec2.vpc_end_points[endpoint_id] = VPCEndPoint(  # type: ignore[abstract]
                ec2, endpoint_id, vpc, f"{FIREWALL_SERVICE}.{region}.network-firewall", "GatewayLoadBalancer",
                None, [], [subnet], None, tags={"nfwlab": "firewall endpoint"})


FIREWALL_SERVICE = "com.amazonaws.vpce"


def collector(url: str) -> Callable[[str, dict[str, Any]], dict[str, Any]]:
    """Reads the account back as `scripts/aws-dump.sh` does, through the endpoint itself with boto3."""
    import boto3

    from .reconcile import policy_arn

    def collect(region: str, snapshot: dict[str, Any]) -> dict[str, Any]:
        ec2 = boto3.client("ec2", endpoint_url=url, region_name=region, aws_access_key_id="nfwlab",
                           aws_secret_access_key="nfwlab")
        vpc = snapshot["firewalls"][0]["Firewall"]["VpcId"]
        in_vpc = [{"Name": "vpc-id", "Values": [vpc]}]

        def call(method: str, **kwargs: Any) -> dict[str, Any]:
            answer = getattr(ec2, method)(**kwargs)
            answer.pop("ResponseMetadata", None)
            return dict(answer)
        dump: dict[str, Any] = {
            "describe-vpcs": call("describe_vpcs", VpcIds=[vpc]),
            "describe-subnets": call("describe_subnets", Filters=in_vpc),
            "describe-route-tables": call("describe_route_tables", Filters=in_vpc),
            "describe-nat-gateways": call("describe_nat_gateways", Filters=in_vpc),
            "describe-internet-gateways": call("describe_internet_gateways",
                                               Filters=[{"Name": "attachment.vpc-id", "Values": [vpc]}]),
            "describe-addresses": call("describe_addresses"),
            "describe-instances": call("describe_instances", Filters=in_vpc),
            "describe-firewall": snapshot["firewalls"][0],
        }
        arn = snapshot["firewalls"][0]["Firewall"]["FirewallPolicyArn"]
        dump["describe-firewall-policy"] = next((p for p in snapshot["policies"] if policy_arn(p) == arn), {})
        dump["describe-rule-group"] = snapshot["rule_groups"]
        return dump
    return collect


ELASTIC_IPS = "198.51.100.128/25"      # Elastic IPs moto makes up (an address given to AllocateAddress is kept)
INSTANCE_PUBLIC_IPS = "192.0.2.0/24"   # public IPs moto gives instances in public subnets


def _quiet_handler(base: Any) -> Any:
    """The request handler logging only failed requests: Terraform makes hundreds of calls."""
    class Quiet(base):
        def log_request(self, code: Any = "-", size: Any = "-") -> None:
            if str(code).isdigit() and int(code) >= 400:
                super().log_request(code, size)
    return Quiet


class Service:
    """`nfwlab serve`: the endpoint on 127.0.0.1:PORT and its reconciler, started and stopped together."""

    def __init__(self, lab_name: str, port: int = DEFAULT_PORT, workdir: Any = None, settle: float = 1.0,
                 lab_factory: Callable[..., Any] | None = None, log: Callable[[str], None] = print):
        from pathlib import Path

        from ..lab import Lab
        from ..state import state_root
        from .reconcile import Reconciler
        self.lab_name, self.port, self.log = lab_name, port, log
        self.url = f"http://127.0.0.1:{port}"
        factory = lab_factory or Lab
        self.workdir = Path(workdir) if workdir else state_root() / f".serve-{lab_name}"
        self.reconciler = Reconciler(lab_name, self.workdir, collector(self.url), factory, settle, log)
        self.api = NetworkFirewallApi(ACCOUNT, moto_subnet_zone, self.reconciler.before_commit,
                                      self._after_commit)
        self.reconciler.snapshot = self.api.state
        self.app = Endpoint(self.api, port, self.reconciler.status, self.reconciler.after_commit)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def _after_commit(self, region: str) -> None:
        sync_gateway_endpoints(region, self.api.state(region))
        self.reconciler.after_commit(region)

    def start(self) -> None:
        """Binds the port and starts answering (in a thread) and reconciling."""
        from moto.moto_api._internal.models import moto_api_backend
        from moto.moto_server.werkzeug_app import MotoRequestHandler
        from werkzeug.serving import make_server

        from ..errors import ConfigError
        from . import moto_fixes
        moto_api_backend.reset()  # moto's state is the process's: each endpoint starts with an empty account
        moto_fixes.install()
        DocumentationAddresses(ELASTIC_IPS).install()
        try:
            self._server = make_server("127.0.0.1", self.port, self.app, threaded=True,
                                       request_handler=_quiet_handler(MotoRequestHandler))
        except OSError as e:
            raise ConfigError(f"can't listen on 127.0.0.1:{self.port}: {e.strerror}",
                              f"pick a free port: `nfwlab --name {self.lab_name} serve --port PORT`") from None
        self.reconciler.start()
        self._thread = threading.Thread(target=self._server.serve_forever, name="nfwlab-endpoint", daemon=True)
        self._thread.start()

    def stop(self, take_down: bool = True) -> None:
        """Stops answering, then takes the lab down (unless `take_down` is False)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self.reconciler.stop(take_down)
        if take_down:
            import shutil
            shutil.rmtree(self.workdir, ignore_errors=True)  # the files the lab ran from: gone with it
