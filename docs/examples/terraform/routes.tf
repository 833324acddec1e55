# The route tables of both designs. `design` picks one; switching changes three routes' targets, adds the NAT
# gateway subnet's return route and removes the internet gateway's edge route table (docs/scenario.md).
#
#   nat-first:      server -> NAT gateway -> firewall -> internet gateway   (alerts name the NAT gateway)
#   firewall-first: server -> firewall -> NAT gateway -> internet gateway   (alerts name the server)

variable "design" {
  description = "nat-first or firewall-first"
  type        = string
  default     = "nat-first"
  validation {
    condition     = contains(["nat-first", "firewall-first"], var.design)
    error_message = "The design is nat-first or firewall-first."
  }
}

locals {
  nat_first = var.design == "nat-first"
}

# private subnet: 0.0.0.0/0 -> NAT gateway (nat-first) or firewall endpoint (firewall-first)
resource "aws_route_table" "private" {
  vpc_id = aws_vpc.main.id
  tags   = { Name = "private-rtb" }
}

resource "aws_route" "private_default" {
  route_table_id         = aws_route_table.private.id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = local.nat_first ? aws_nat_gateway.main.id : null
  vpc_endpoint_id        = local.nat_first ? null : local.firewall_endpoint
}

resource "aws_route_table_association" "private" {
  subnet_id      = aws_subnet.private.id
  route_table_id = aws_route_table.private.id
}

# public subnet (the NAT gateway's): 0.0.0.0/0 -> firewall endpoint (nat-first) or internet gateway
resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id
  tags   = { Name = "public-rtb" }
}

resource "aws_route" "public_default" {
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = "0.0.0.0/0"
  vpc_endpoint_id        = local.nat_first ? local.firewall_endpoint : null
  gateway_id             = local.nat_first ? null : aws_internet_gateway.main.id
}

# firewall-first: the NAT gateway's replies to the servers go back through the firewall
resource "aws_route" "public_return" {
  count                  = local.nat_first ? 0 : 1
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = aws_subnet.private.cidr_block
  vpc_endpoint_id        = local.firewall_endpoint
}

resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}

# firewall subnet: 0.0.0.0/0 -> internet gateway (nat-first) or NAT gateway (firewall-first)
resource "aws_route_table" "firewall" {
  vpc_id = aws_vpc.main.id
  tags   = { Name = "firewall-rtb" }
}

resource "aws_route" "firewall_default" {
  route_table_id         = aws_route_table.firewall.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = local.nat_first ? aws_internet_gateway.main.id : null
  nat_gateway_id         = local.nat_first ? null : aws_nat_gateway.main.id
}

resource "aws_route_table_association" "firewall" {
  subnet_id      = aws_subnet.firewall.id
  route_table_id = aws_route_table.firewall.id
}

# nat-first only: the internet gateway's edge route table brings replies back through the firewall
resource "aws_route_table" "igw_edge" {
  count  = local.nat_first ? 1 : 0
  vpc_id = aws_vpc.main.id
  tags   = { Name = "igw-edge-rtb" }
}

resource "aws_route" "igw_edge_public" {
  count                  = local.nat_first ? 1 : 0
  route_table_id         = aws_route_table.igw_edge[0].id
  destination_cidr_block = aws_subnet.public.cidr_block
  vpc_endpoint_id        = local.firewall_endpoint
}

resource "aws_route_table_association" "igw_edge" {
  count          = local.nat_first ? 1 : 0
  gateway_id     = aws_internet_gateway.main.id
  route_table_id = aws_route_table.igw_edge[0].id
}
