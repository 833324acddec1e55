"""The live view's server against what any web page can send to 127.0.0.1: forged Host headers (DNS rebinding),
cross-site switch requests (text/plain bodies, other or no Origin, no token) and file paths as design names.
The real server on a free port, in front of a real Lab whose Docker and kernel are the fakes (tests/unit/fakes.py);
what a browser makes of the answers is tests/integration/test_ui_security_live.py."""
from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest
import requests
from fakes import FakeDocker, FakeKernel

import lab.lab as lab_module
from lab import deploy
from lab.lab import TOPOLOGIES_DIR, Lab
from lab.ui import CSP, REQUEST_TIMEOUT, TOKEN_HEADER, LiveView

SWITCH = {"design": "firewall-first"}


@pytest.fixture
def fakes(monkeypatch):
    monkeypatch.setattr(deploy.os, "geteuid", lambda: 0)  # the root check, not what is tested here
    return FakeDocker(), FakeKernel()


@pytest.fixture
def view(tmp_path, fakes):
    docker, kernel = fakes
    lab = Lab("unit", state_dir=tmp_path / "unit", docker=docker, kernel=kernel)
    lab.up("nat-first")
    server = LiveView(lab, port=0)
    server.start()
    yield server
    server.stop()


def switches(kernel: FakeKernel) -> int:
    return kernel.names().count("replace_routes")


def own(view: LiveView, **headers: str) -> dict[str, str]:
    """The headers the live view's own page sends with a switch."""
    return {"Origin": f"http://127.0.0.1:{view.port}", TOKEN_HEADER: view.token,
            "Content-Type": "application/json", **headers}


def post(view: LiveView, headers: dict[str, str], body: str = json.dumps(SWITCH)) -> requests.Response:
    return requests.post(view.url + "api/design", data=body.encode(), headers=headers, timeout=10)


def test_only_127_0_0_1_is_bound(view):
    assert view.server.server_address[0] == "127.0.0.1"
    assert view.url == f"http://127.0.0.1:{view.port}/"


@pytest.mark.parametrize("host", ["evil.example:{port}", "evil.example", "127.0.0.1", "127.0.0.1:1",
                                  "localhost.evil.example:{port}", "0.0.0.0:{port}"])
@pytest.mark.parametrize("path", ["/", "/api/state", "/api/alerts", "/app.js"])
def test_a_forged_host_is_misdirected_and_sees_nothing_of_the_lab(view, host, path):
    forged = requests.get(view.url.rstrip("/") + path, headers={"Host": host.format(port=view.port)}, timeout=10)
    assert forged.status_code == 421
    assert forged.headers["Content-Type"].startswith("text/plain")
    for secret in ("private-rtb", "nat-first", "firewall-first", "unit", view.token, "alerts", "fetch("):
        assert secret not in forged.text, f"{path} with Host {host} served {secret!r}"
    assert "is not this live view" in forged.text
    # The same request with the server's own address is served (the refusal is the Host's doing).
    assert requests.get(view.url.rstrip("/") + path, timeout=10).status_code == 200


def test_localhost_is_this_server_too(view):
    answer = requests.get(view.url + "api/state", headers={"Host": f"localhost:{view.port}"}, timeout=10)
    assert answer.status_code == 200 and answer.json()["design"] == "nat-first"


def test_a_forged_host_cannot_switch(view, fakes):
    _, kernel = fakes
    before = switches(kernel)
    answer = post(view, own(view, Host=f"evil.example:{view.port}", Origin=f"http://evil.example:{view.port}"))
    assert answer.status_code == 421
    assert switches(kernel) == before and view.lab.topology_name == "nat-first"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_a_simple_cross_site_body_is_refused_even_with_origin_and_token(view, fakes, content_type):
    _, kernel = fakes
    before = switches(kernel)
    answer = post(view, own(view, **{"Content-Type": content_type}))
    assert answer.status_code == 415 and "application/json" in answer.json()["error"]
    assert switches(kernel) == before and view.lab.topology_name == "nat-first"


@pytest.mark.parametrize("origin", [None, "http://127.0.0.1:1", "http://evil.example", "null",
                                    "http://127.0.0.1:{port}.evil.example", "https://127.0.0.1:{port}"])
def test_a_switch_from_another_origin_or_none_is_forbidden(view, fakes, origin):
    _, kernel = fakes
    before = switches(kernel)
    headers = own(view)
    if origin is None:
        del headers["Origin"]
    else:
        headers["Origin"] = origin.format(port=view.port)
    answer = post(view, headers)
    assert answer.status_code == 403 and "own page" in answer.json()["error"]
    assert switches(kernel) == before and view.lab.topology_name == "nat-first"
    assert view.refused[-1].status == 403 and view.refused[-1].path == "/api/design"


@pytest.mark.parametrize("token", [lambda t: None, lambda t: "", lambda t: "x", lambda t: t + "x", lambda t: t[:-1],
                                   lambda t: t.upper()], ids=["none", "empty", "other", "longer", "shorter", "upper"])
def test_a_switch_without_the_pages_token_is_forbidden(view, fakes, token):
    _, kernel = fakes
    before = switches(kernel)
    headers = own(view)
    if token(view.token) is None:
        del headers[TOKEN_HEADER]
    else:
        headers[TOKEN_HEADER] = token(view.token)
    answer = post(view, headers)
    assert answer.status_code == 403 and TOKEN_HEADER in answer.json()["error"]
    assert switches(kernel) == before and view.lab.topology_name == "nat-first"


def test_the_token_is_in_the_page_and_new_at_each_start(view):
    page = requests.get(view.url, timeout=10).text
    assert f'<meta name="nfwlab-token" content="{view.token}">' in page
    assert len(view.token) >= 40
    other = LiveView(view.lab, port=0)
    try:
        assert other.token != view.token
    finally:
        other.server.server_close()


@pytest.mark.parametrize("name", ["{copy}", "../topologies/firewall-first", "firewall-first.yaml",
                                  "topologies/firewall-first", "./firewall-first", "/etc/passwd", "multi-az",
                                  "no-such-design", "", "firewall-first\n"])
def test_a_file_path_or_an_unknown_name_is_refused_and_no_file_is_read(view, fakes, monkeypatch, tmp_path, name):
    """`{copy}` is a valid copy of firewall-first.yaml: if the web could name a file, this switch would work."""
    _, kernel = fakes
    copy = tmp_path / "firewall-first.yaml"
    copy.write_text((TOPOLOGIES_DIR / "firewall-first.yaml").read_text())
    read: list[Path] = []
    real = lab_module.load_topology

    def recording(path):
        read.append(Path(path))
        return real(path)
    monkeypatch.setattr(lab_module, "load_topology", recording)
    before = switches(kernel)
    answer = post(view, own(view), json.dumps({"design": name.format(copy=copy)}))
    assert answer.status_code == 400, answer.text
    assert switches(kernel) == before and view.lab.topology_name == "nat-first"
    if name and re.fullmatch(r"[\w-]+", name):  # a name: refused once the shipped topologies were looked at
        designs = view.designs()
        assert name not in designs and {"nat-first", "firewall-first"} <= set(designs)
        assert f"is not a design this lab can switch to: {', '.join(designs)}" in answer.json()["error"]
        assert read and all(p.parent == TOPOLOGIES_DIR for p in read), read
    else:  # a path, or not a name at all: refused before any file is looked at
        assert "is not a topology name" in answer.json()["error"]
        assert read == []


@pytest.mark.parametrize("body", ["", "not json", "[]", '{"design": 1}', '{"name": "firewall-first"}'])
def test_a_body_that_is_not_a_design_request_is_refused(view, body):
    answer = post(view, own(view), body)
    assert answer.status_code == 400 and answer.json()["error"] == 'the body must be {"design": NAME}'


def test_an_oversized_body_is_refused_unread(view):
    answer = post(view, own(view), json.dumps({"design": "firewall-first", "pad": "x" * 10000}))
    assert answer.status_code == 413


def test_the_pages_own_switch_is_accepted(view, fakes):
    _, kernel = fakes
    before = switches(kernel)
    answer = post(view, own(view))
    assert answer.status_code == 200 and answer.json()["design"] == "firewall-first"
    assert switches(kernel) == before + 1 and view.lab.topology_name == "firewall-first"
    answer = post(view, own(view, Origin=f"http://localhost:{view.port}"), json.dumps({"design": "nat-first"}))
    assert answer.status_code == 200 and view.lab.topology_name == "nat-first"


@pytest.mark.parametrize("method, path", [("GET", "/"), ("GET", "/app.js"), ("GET", "/app.css"),
                                          ("GET", "/api/state"), ("GET", "/api/alerts?since=x"),
                                          ("GET", "/nothing"), ("POST", "/api/design"), ("OPTIONS", "/api/design"),
                                          ("PUT", "/api/design")])
def test_every_answer_carries_the_browser_headers_and_no_cors(view, method, path):
    answer = requests.request(method, view.url.rstrip("/") + path, timeout=10,
                              headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Content-Security-Policy"] == CSP
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert answer.headers["Cache-Control"] == "no-store"
    assert not [h for h in answer.headers if h.lower().startswith("access-control-")]


def test_the_page_runs_no_inline_script_or_style(view):
    """script-src 'self' and style-src 'self' refuse inline code: the page loads its script and style files."""
    page = requests.get(view.url, timeout=10).text
    assert '<script src="/app.js" defer></script>' in page and '<link rel="stylesheet" href="/app.css">' in page
    assert "<style" not in page and not re.search(r"\son\w+=", page)  # nor on...= handlers
    script = requests.get(view.url + "app.js", timeout=10)
    assert script.headers["Content-Type"].startswith("text/javascript") and TOKEN_HEADER in script.text
    assert requests.get(view.url + "app.css", timeout=10).headers["Content-Type"].startswith("text/css")


def test_a_silent_client_is_dropped_after_the_socket_timeout(view):
    """A connection that never sends its request does not hold its thread forever."""
    assert view.server.RequestHandlerClass.timeout == REQUEST_TIMEOUT
    view.server.RequestHandlerClass.timeout = 0.5
    with socket.create_connection(("127.0.0.1", view.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n")  # and nothing more
        assert sock.recv(100) == b""  # the server closed the connection
