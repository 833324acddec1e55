# AWS Network Firewall: a deny list for blocked.example (TLS SNI and HTTP Host), one endpoint in the firewall subnet.

resource "aws_networkfirewall_rule_group" "deny" {
  name     = "deny-domains"
  type     = "STATEFUL"
  capacity = 100
  rule_group {
    rules_source {
      rules_source_list {
        generated_rules_type = "DENYLIST"
        target_types         = ["TLS_SNI", "HTTP_HOST"]
        targets              = ["blocked.example"]
      }
    }
  }
}

resource "aws_networkfirewall_firewall_policy" "main" {
  name = "nfwlab-policy"
  firewall_policy {
    stateless_default_actions          = ["aws:forward_to_sfe"]
    stateless_fragment_default_actions = ["aws:forward_to_sfe"]
    stateful_rule_group_reference {
      resource_arn = aws_networkfirewall_rule_group.deny.arn
    }
  }
}

resource "aws_networkfirewall_firewall" "main" {
  name                = "nfwlab-firewall"
  firewall_policy_arn = aws_networkfirewall_firewall_policy.main.arn
  vpc_id              = aws_vpc.main.id
  subnet_mapping {
    subnet_id = aws_subnet.firewall.id
  }
}

resource "aws_networkfirewall_logging_configuration" "main" {
  firewall_arn = aws_networkfirewall_firewall.main.arn
  logging_configuration {
    log_destination_config {
      log_destination_type = "CloudWatchLogs"
      log_type             = "ALERT"
      log_destination      = { logGroup = "/nfwlab/alert" }
    }
  }
}

locals {
  # The firewall's endpoint in the firewall subnet's Availability Zone: what routes send traffic to.
  firewall_endpoint = one([
    for s in aws_networkfirewall_firewall.main.firewall_status[0].sync_states : s.attachment[0].endpoint_id
    if s.availability_zone == aws_subnet.firewall.availability_zone
  ])
}
