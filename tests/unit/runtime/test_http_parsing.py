"""The runtime's lean header parsing for ``POST /runtime_manager`` against the standard library's (the oracle)."""

from __future__ import annotations

import io
from http.server import BaseHTTPRequestHandler

import pytest

from runtime.server import _Handler


def _parsed(parse: object, head: bytes) -> tuple[object, ...]:
    """Run ``parse`` (a parse_request) on a handler reading ``head``; what a request handler then sees."""
    handler = object.__new__(_Handler)  # no socket: parse_request reads rfile and writes errors to wfile
    first, _, rest = head.partition(b"\r\n")
    handler.raw_requestline = first + b"\r\n"
    handler.rfile, handler.wfile = io.BytesIO(rest), io.BytesIO()
    handler.request_version = handler.default_request_version
    handler.client_address = ("127.0.0.1", 0)
    ok = parse(handler)  # type: ignore[operator]
    headers = getattr(handler, "headers", None)
    return (
        ok,
        handler.close_connection,
        getattr(handler, "command", None),
        getattr(handler, "path", None),
        getattr(handler, "request_version", None),
        None if headers is None else sorted(headers.items()),
        None if headers is None else headers.get("Content-Length"),
        handler.wfile.getvalue().split(b"\r\n")[0],  # the status line of an error or of 100 Continue
        handler.rfile.read(),  # what is left for the body
    )


HEADS = [
    b"Host: x\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\n0 AAAA",
    b"Host: x\r\nContent-Length: 12\r\nConnection: close\r\n\r\n",
    b"Host: x\r\nContent-Length: 12\r\nconnection: Keep-Alive\r\n\r\n",
    b"Content-Length:12\r\n\r\n",
    b"Content-Length: \t 12 \r\n\r\n",
    b"Content-Length: 12\r\nContent-Length: 99\r\n\r\n",  # twice: both kept, the first one read
    b"Content-Length: 12\n\n",
    b"Content-Length : 12\r\n\r\n",  # a space before the colon: not the Content-Length header
    b"X-Folded: a\r\n b\r\nContent-Length: 12\r\n\r\n",  # an obsolete folded line
    b"no colon here\r\nContent-Length: 12\r\n\r\n",
    b"Expect: 100-continue\r\nContent-Length: 12\r\n\r\n",
    b"Content-Length: 12\r\n" + b"X-A: b\r\n" * 101 + b"\r\n",  # too many headers
    b"Content-Length: 12\r\n" + b"X-A: b\r\n" * 99 + b"\r\n",  # 100 lines: the standard parser counts the blank
    b"Content-Length: 12\r\n" + b"X-A: b\r\n" * 98 + b"\r\n",  # 99 lines and the blank: the most it takes
    b"X-Long: " + b"a" * 70000 + b"\r\n\r\n",  # a line too long
    b"Content-Length: 12\r\n",  # the connection ends inside the headers
    b"X-Latin: caf\xe9\r\nContent-Length: 3\r\n\r\n",
]


@pytest.mark.parametrize("head", HEADS)
def test_runtime_posts_parse_as_the_standard_parser_parses_them(head):
    request = b"POST /runtime_manager HTTP/1.1\r\n" + head
    assert _parsed(_Handler.parse_request, request) == _parsed(BaseHTTPRequestHandler.parse_request, request)


@pytest.mark.parametrize(
    "line",
    [b"POST /runtime_manager HTTP/1.0", b"POST /other HTTP/1.1", b"GET /runtime_manager HTTP/1.1", b"POST  /x"],
)
def test_other_request_lines_go_the_standard_way(line):
    request = line + b"\r\nContent-Length: 3\r\n\r\n"
    assert _parsed(_Handler.parse_request, request) == _parsed(BaseHTTPRequestHandler.parse_request, request)


@pytest.mark.parametrize(
    "head",
    [
        b"X-A: 1\rContent-Length: 99\r\nContent-Length: 12\r\n\r\n",  # the standard parser splits here: CL 99
        b"Content-Length: 12\r\nX-A: 1\rConnection: close\r\n\r\n",
        b"X-A: \x00\r\nContent-Length: 12\r\n\r\n",
    ],
)
def test_a_bare_cr_or_a_nul_in_a_header_line_is_refused(head):
    """Where the two parsers would disagree (review of the lean parse: a bare CR ends a line for the email
    parser, not for ours), neither reading is used: RFC 9112 2.2 makes a bare CR invalid, so it is a 400."""
    ok, close, *_, status, _rest = _parsed(_Handler.parse_request, b"POST /runtime_manager HTTP/1.1\r\n" + head)
    assert ok is False and close is True and status.startswith(b"HTTP/1.1 400"), status
