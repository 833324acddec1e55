"""nfw-lab: an emulated AWS VPC with a NAT gateway and an inline AWS Network Firewall (real Suricata 7),
to see what the firewall's alert log says when it sits before or after the NAT gateway."""
from .errors import ConfigError, EnvironmentProblem, LabError, NodeError, StateError, WaitTimeout
from .lab import Lab, build_images, design_names, topology_names
from .results import DownReport, FetchResult, LiveTrace, PolicyApplied, Status

__all__ = ["ConfigError", "DownReport", "EnvironmentProblem", "FetchResult", "Lab", "LabError", "LiveTrace",
           "NodeError", "PolicyApplied", "StateError", "Status", "WaitTimeout", "build_images", "design_names",
           "topology_names"]
__version__ = "0.1.0"
