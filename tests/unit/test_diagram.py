"""Diagrams: the VPC with a server's path highlighted, rendered by Graphviz's dot; route table diffs."""
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from lab.diagram import REQUEST, RESPONSE, diagram, write
from lab.model import load_topology
from lab.routing import diff_route_tables

ROOT = Path(__file__).resolve().parents[2]  # the repository, wherever pytest runs from


def topo(name):
    t = load_topology(ROOT / "topologies" / f"{name}.yaml")
    return t.vpc, t.route_tables


def path_edges(source, color):
    return [line.strip().split(" [")[0].replace('"', "") for line in source.splitlines()
            if "->" in line and f'color="{color}"' in line]


@pytest.mark.parametrize("design, path, seen", [
    ("nat-first", ["server-a -> nat-gateway", "nat-gateway -> firewall", "firewall -> internet-gateway",
                   "internet-gateway -> internet"], "10.0.13.92"),
    ("firewall-first", ["server-a -> firewall", "firewall -> nat-gateway", "nat-gateway -> internet-gateway",
                        "internet-gateway -> internet"], "10.0.136.108"),
])
def test_the_request_path_is_highlighted_in_order_with_what_the_firewall_sees(design, path, seen):
    source = diagram(*topo(design), "server-a", "blocked.example").source
    for node in ("server-a", "server-b", "nat-gateway", "firewall", "internet-gateway", "internet"):
        assert f"\t{node} [" in source or f'\t"{node}" [' in source, node  # dot quotes names with a dash
    assert path_edges(source, REQUEST) == path
    assert path_edges(source, RESPONSE)  # the response, dashed
    assert f"sees source {seen}" in source
    assert "route table private-rtb" in source and f"the firewall sees {seen}" in source


def test_diagrams_render_as_svg_and_png(tmp_path):
    graph = diagram(*topo("multi-az"), "server-c")
    svg = write(graph, tmp_path / "d.svg")
    assert ET.parse(svg).getroot().tag.endswith("svg")
    png = write(graph, tmp_path / "d.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10000
    assert "cluster_az_ap-northeast-1c" in write(graph, tmp_path / "d.dot").read_text()
    with pytest.raises(ValueError, match="unknown format"):
        write(graph, tmp_path / "d.bmp")


def test_route_table_diff_says_what_the_fix_changes():
    vpc, nat_first = topo("nat-first")
    _, firewall_first = topo("firewall-first")
    text = diff_route_tables(vpc, nat_first, firewall_first)
    assert "0.0.0.0/0        nat-0c3d4e5f6a7b80001 (nat-gateway)  =>  vpce-0e5f6a7b8c9d00001 (firewall)" in text
    assert "+ 10.0.128.0/20    -> vpce-0e5f6a7b8c9d00001 (firewall)" in text
    assert "route table igw-edge-rtb removed (no ingress routing)" in text
    assert diff_route_tables(vpc, nat_first, nat_first).endswith("no change\n")
