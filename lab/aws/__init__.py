"""AWS's own interfaces to the lab: a local AWS endpoint (EC2 and STS through moto, Network Firewall our own),
import of an account's describe-* output or of `terraform show -json`, and export of a lab in those forms."""
