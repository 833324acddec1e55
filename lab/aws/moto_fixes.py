"""Where moto's EC2 differs from EC2 in a way Terraform meets, corrected before the endpoint serves.

- ReplaceRoute ignores VpcEndpointId (moto 5.2): a route moved to a firewall endpoint lost its target, and one
  moved off an endpoint kept it. EC2's API reference lists VpcEndpointId among ReplaceRoute's targets, so the
  request's VpcEndpointId (or its absence) now replaces the route's endpoint like any other target.
- CreateNatGateway gives the NAT gateway a random private address outside its subnet and ignores
  PrivateIpAddress (moto 5.2). EC2 gives it an address of its subnet, the one asked for if any ("PrivateIpAddress:
  The private IPv4 address to assign to the NAT gateway. If you don't provide an address, a private IPv4 address
  will be automatically assigned."); so does the endpoint now.
"""
from __future__ import annotations

import threading
from typing import Any

_request = threading.local()  # the VpcEndpointId of the ReplaceRoute request being answered on this thread
_installed = False


def install() -> None:
    """Applies the corrections once per process."""
    global _installed
    if _installed:
        return
    from moto.ec2.exceptions import RouteNotSupportedError
    from moto.ec2.models.route_tables import RouteBackend
    from moto.ec2.responses.route_tables import RouteTables

    answer, replace = RouteTables.replace_route, RouteBackend.replace_route

    def answer_replace_route(self: Any) -> Any:
        _request.vpc_endpoint_id = self._get_param("VpcEndpointId")
        try:
            return answer(self)
        finally:
            _request.vpc_endpoint_id = None

    def replace_route(self: Any, *args: Any, **kwargs: Any) -> Any:
        endpoint = getattr(_request, "vpc_endpoint_id", None)
        if endpoint:
            found = self.describe_vpc_endpoints(vpc_end_point_ids=[endpoint])
            if found[0].vpc_endpoint_type != "GatewayLoadBalancer":
                raise RouteNotSupportedError(endpoint)
        route = replace(self, *args, **kwargs)
        route.vpc_endpoint_id = endpoint
        return route

    _install_nat_gateway_address()
    RouteTables.replace_route = answer_replace_route  # type: ignore[method-assign]
    RouteBackend.replace_route = replace_route  # type: ignore[method-assign]
    _installed = True


def _install_nat_gateway_address() -> None:
    from moto.ec2.exceptions import InvalidParameterValueError
    from moto.ec2.models import nat_gateways
    from moto.ec2.models.nat_gateways import NatGatewayBackend
    from moto.ec2.responses.nat_gateways import NatGateways

    answer, create, made_up = NatGateways.create_nat_gateway, NatGatewayBackend.create_nat_gateway, \
        nat_gateways.random_private_ip

    def answer_create_nat_gateway(self: Any) -> Any:
        _request.nat_private_ip = self._get_param("PrivateIpAddress")
        try:
            return answer(self)
        finally:
            _request.nat_private_ip = None

    def create_nat_gateway(self: Any, subnet_id: str, *args: Any, **kwargs: Any) -> Any:
        subnet = self.get_subnet(subnet_id)
        wanted = getattr(_request, "nat_private_ip", None)
        if wanted:
            try:
                subnet.request_ip(wanted, "nat-gateway")
            except Exception as e:  # moto raises a bare Exception: outside the subnet, or in use
                raise InvalidParameterValueError(f"PrivateIpAddress {wanted}: {e}") from None
        else:
            wanted = subnet.get_available_subnet_ip("nat-gateway")
        _request.nat_address = wanted
        try:
            return create(self, subnet_id, *args, **kwargs)
        finally:
            _request.nat_address = None

    def private_ip(*args: Any, **kwargs: Any) -> Any:
        return getattr(_request, "nat_address", None) or made_up(*args, **kwargs)

    NatGateways.create_nat_gateway = answer_create_nat_gateway  # type: ignore[method-assign]
    NatGatewayBackend.create_nat_gateway = create_nat_gateway  # type: ignore[method-assign]
    nat_gateways.random_private_ip = private_ip
