"""FetchResult.failure: how a request failed, as the tests tell a drop (nothing back) and a reject (a reset)
from a request that could not be made at all. The errors are curl 7.88's own messages, from the lab's nodes."""
import pytest

from lab.results import FetchResult


def result(status: int | None, code: int, error: str = "") -> FetchResult:
    return FetchResult("server-a", "https://blocked.example/", status, code, error, 0.1)


@pytest.mark.parametrize("status, code, error, failure", [
    (200, 0, "", None),
    (421, 0, "", None),  # an HTTP answer, even an error status, is an answer
    (None, 28, "(28) Connection timed out after 3001 milliseconds", "timeout"),
    (None, 28, "(28) Operation timed out after 3000 milliseconds with 0 bytes received", "timeout"),
    (None, 7, "(7) Failed to connect to 203.0.113.10 port 443 after 1 ms: Couldn't connect to server", "reset"),
    (None, 35, "(35) OpenSSL SSL_connect: Connection reset by peer in connection to blocked.example:443", "reset"),
    (None, 52, "(52) Empty reply from server", "reset"),
    (None, 56, "(56) Recv failure: Connection reset by peer", "reset"),
    (None, 6, "(6) Could not resolve host: nosuch.invalid", "error"),
    (None, 3, "(3) URL using bad/illegal format or missing URL", "error"),
    (None, 1, '(1) Protocol "htp" not supported or disabled in libcurl', "error"),
    (None, 35, "(35) error:0A00010B:SSL routines::wrong version number", "error"),  # TLS to a plain port
])
def test_a_failure_is_told_by_its_kind(status, code, error, failure):
    assert result(status, code, error).failure == failure


def test_the_kind_is_in_the_json():
    assert result(None, 6, "(6) Could not resolve host: x").as_dict()["failure"] == "error"
