"""nfw-lab: an emulated AWS VPC with a NAT gateway and an inline AWS Network
Firewall (real Suricata 7), to see what the firewall's alert log says when it
sits before or after the NAT gateway."""
from .errors import ConfigError, EnvironmentProblem, LabError, NodeError, StateError, WaitTimeout
from .lab import FetchResult, Lab, build_images, design_names

__all__ = ["ConfigError", "EnvironmentProblem", "FetchResult", "Lab", "LabError", "NodeError",
           "StateError", "WaitTimeout", "build_images", "design_names"]
__version__ = "0.1.0"
