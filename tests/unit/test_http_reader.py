"""The tests' one reader of raw HTTP answers (tests.support.sockets) frames them as RFC 9112 section 6.3 does:
the security tests that send hostile bytes rely on it to tell one answer from the next."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.support.sockets import HttpReader, read_http_answer


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    ours.settimeout(5)
    with ours, theirs:
        yield ours, theirs


def test_pipelined_answers_are_framed_one_by_one(pair):
    ours, theirs = pair
    theirs.sendall(
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
        b"HTTP/1.1 204 No Content\r\n\r\n"
        b"HTTP/1.1 200 OK\r\ncontent-length:  5 \r\n\r\n"  # a HEAD's: no body follows its length
        b"HTTP/1.1 404 Not Found\r\n\r\nuntil the close"
    )
    theirs.shutdown(socket.SHUT_WR)
    reader = HttpReader(ours, size=7)  # small reads: heads and bodies cut anywhere
    answers = [reader.answer(), reader.answer(), reader.answer(), reader.answer("HEAD"), reader.answer()]
    assert [(a.status, a.reason, a.body) for a in answers] == [
        (100, "Continue", b""),
        (200, "OK", b"abc"),
        (204, "No Content", b""),
        (200, "OK", b""),
        (404, "Not Found", b"until the close"),
    ]
    assert answers[3].header("Content-Length") == "5"
    assert answers[1].raw == b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"


def test_an_answer_cut_short_by_a_close_is_an_error_not_a_hang(pair):
    ours, theirs = pair
    theirs.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel")
    theirs.shutdown(socket.SHUT_WR)
    with pytest.raises(ConnectionError):
        read_http_answer(ours)


@pytest.mark.parametrize(
    "wire",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\n",  # bytes past the one answer
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",  # two framings
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",  # not read here
        b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length 0\r\n\r\n",  # a header line without its colon
    ],
)
def test_what_is_not_one_whole_answer_fails_the_test(pair, wire):
    ours, theirs = pair
    theirs.sendall(wire)
    with pytest.raises(AssertionError):
        read_http_answer(ours)
