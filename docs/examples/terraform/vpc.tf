# The write-up's VPC: a public subnet with the NAT gateway, a firewall subnet, a private subnet with two servers.
# Private addresses are the write-up's; the Elastic IP comes from a documentation range (198.51.100.0/24).

resource "aws_vpc" "main" {
  cidr_block = "10.0.0.0/16"
  tags       = { Name = "nfwlab-vpc" }
}

resource "aws_subnet" "public" {
  vpc_id            = aws_vpc.main.id
  cidr_block        = "10.0.0.0/20"
  availability_zone = "ap-northeast-1a"
  tags              = { Name = "public" }
}

resource "aws_subnet" "firewall" {
  vpc_id            = aws_vpc.main.id
  cidr_block        = "10.0.16.0/28"
  availability_zone = "ap-northeast-1a"
  tags              = { Name = "firewall" }
}

resource "aws_subnet" "private" {
  vpc_id            = aws_vpc.main.id
  cidr_block        = "10.0.128.0/20"
  availability_zone = "ap-northeast-1a"
  tags              = { Name = "private" }
}

resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
  tags   = { Name = "internet-gateway" }
}

resource "aws_eip" "nat" {
  domain  = "vpc"
  address = "198.51.100.10"
  tags    = { Name = "nat-gateway" }
}

resource "aws_nat_gateway" "main" {
  allocation_id = aws_eip.nat.id
  subnet_id     = aws_subnet.public.id
  private_ip    = "10.0.13.92"
  tags          = { Name = "nat-gateway" }
  depends_on    = [aws_internet_gateway.main]
}

variable "ami" {
  description = "Any image id: the lab runs its own server image"
  type        = string
  default     = "ami-0123456789abcdef0"
}

resource "aws_instance" "server_a" {
  ami           = var.ami
  instance_type = "t3.micro"
  subnet_id     = aws_subnet.private.id
  private_ip    = "10.0.136.108"
  tags          = { Name = "server-a" }
}

resource "aws_instance" "server_b" {
  ami           = var.ami
  instance_type = "t3.micro"
  subnet_id     = aws_subnet.private.id
  private_ip    = "10.0.140.23"
  tags          = { Name = "server-b" }
}
