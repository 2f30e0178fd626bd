"""The TLS client's pieces that need no server: deadlines, replies, errors."""

from __future__ import annotations

import socket
import ssl
import sys
import threading
import time

import pytest

from ansible_collections.trm.maintenance.plugins.module_utils import tls


def test_results_keep_the_order_of_the_items():
    def work(item):
        time.sleep(0.01 * (5 - item))
        return item * 10

    results = tls.run_with_deadlines(
        work, list(range(5)), max_workers=3, limit=lambda _item: 5, fallback=None
    )
    assert results == [0, 10, 20, 30, 40]


def test_an_item_that_hangs_gets_the_fallback_and_holds_no_one_up():
    release = threading.Event()
    started = time.monotonic()

    def work(item):
        if item == "hangs":
            release.wait(30)  # as a host name lookup that never returns
        return f"{item} done"

    try:
        results = tls.run_with_deadlines(
            work,
            ["hangs", "a", "b", "c"],
            max_workers=1,
            limit=lambda _item: 0.3,
            fallback=lambda item, error: (item, error),
        )
    finally:
        release.set()
    assert results == [("hangs", None), "a done", "b done", "c done"]
    assert time.monotonic() - started < 2


def test_an_item_that_raises_gets_the_fallback_with_the_error():
    def work(item):
        if item == 2:
            raise RuntimeError("boom")
        return item

    results = tls.run_with_deadlines(
        work,
        [1, 2, 3],
        max_workers=2,
        limit=lambda _item: 5,
        fallback=lambda item, error: f"{item}: {error}",
    )
    assert results == [1, "2: boom", 3]


def test_no_more_workers_run_than_asked():
    running = []
    peak = []
    lock = threading.Lock()

    def work(item):
        with lock:
            running.append(item)
            peak.append(len(running))
        time.sleep(0.05)
        with lock:
            running.remove(item)
        return item

    tls.run_with_deadlines(
        work, list(range(8)), max_workers=3, limit=lambda _item: 5, fallback=None
    )
    assert max(peak) == 3


def test_a_deadline_runs_out():
    deadline = tls.Deadline(0.05)
    assert 0 < deadline.remaining() <= 0.05
    time.sleep(0.06)
    with pytest.raises(socket.timeout):
        deadline.remaining()


PEERS = []


def _reader(data: bytes, *, hang_up: bool = True) -> tls.LineReader:
    ours, theirs = socket.socketpair()
    theirs.sendall(data)
    if hang_up:
        theirs.close()
    else:
        PEERS.append(theirs)  # open until the test run ends, to take our commands
    return tls.LineReader(ours, tls.Deadline(2))


def test_multi_line_replies_are_read_whole():
    reader = _reader(
        b"250-mail.example.org\r\n250-SIZE 1000\r\n250 STARTTLS\r\n220 x\r\n"
    )
    assert reader.reply() == (
        250,
        ["250-mail.example.org", "250-SIZE 1000", "250 STARTTLS"],
    )
    assert reader.reply() == (220, ["220 x"])


def test_a_reply_that_is_not_smtp_has_no_code():
    assert _reader(b"HTTP/1.1 400 Bad Request\r\n").reply()[0] is None


def test_a_closed_connection_before_tls_is_a_starttls_error():
    with pytest.raises(tls.StartTLSError, match="closed the connection"):
        _reader(b"220 partial").reply()


def test_the_smtp_dialogue_refuses_a_server_without_starttls():
    reader = _reader(b"220 hi\r\n250-mail\r\n250 HELP\r\n", hang_up=False)
    with pytest.raises(tls.StartTLSError, match="does not offer STARTTLS"):
        tls._smtp_starttls(reader)


TARGET = tls.Target("db.example.org", 5432, starttls="postgres", timeout=2.0)


@pytest.mark.parametrize(
    ("error", "kind", "words"),
    [
        (socket.timeout("timed out"), "timeout", "within the timeout of 2 s"),
        (ConnectionRefusedError(111, "refused"), "connection_refused", "refused by"),
        (socket.gaierror(-2, "Name or service not known"), "dns", "db.example.org"),
        (ConnectionResetError(104, "reset"), "handshake", "closed the connection"),
        (OSError(113, "No route to host"), "connection", "No route to host"),
    ],
)
def test_errors_are_worded_for_a_person(error, kind, words):
    translated = tls.translate_error(error, TARGET, 1.23456)
    assert translated.kind == kind
    assert words in str(translated)
    assert translated.elapsed == 1.235


def test_chain_support_is_known_on_this_python():
    expected = None if sys.version_info >= (3, 10) else "cannot return the chain"
    note = tls.chain_support()
    assert note is None if expected is None else expected in note


def test_the_client_contexts_verify_one_and_accept_everything_in_the_other():
    contexts = tls.build_contexts()
    assert contexts.verifying.verify_mode == ssl.CERT_REQUIRED
    assert contexts.verifying.verify_flags & tls.NO_CHECK_TIME
    assert contexts.lenient.verify_mode == ssl.CERT_NONE
    assert contexts.lenient.check_hostname is False
    assert contexts.trust == "system"
