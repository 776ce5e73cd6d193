"""What a database failure says in a log: the server's message and code, never the password."""

from __future__ import annotations

import pymysql

from pushsvc.store.mariadb import describe_error


def test_the_servers_message_and_code():
    assert describe_error(pymysql.err.OperationalError(1049, "Unknown database 'x'")) == "Unknown database 'x' (1049)"
    assert (
        describe_error(pymysql.err.OperationalError(1045, "Access denied for user 'u'@'h' (using password: YES)"))
        == "Access denied for user 'u'@'h' (using password: YES) (1045)"
    )


def test_no_message_names_the_class_and_code():
    assert describe_error(pymysql.err.InterfaceError(0, "")) == "InterfaceError 0"


def test_timeouts_and_socket_errors():
    assert describe_error(TimeoutError()) == "timed out"
    assert describe_error(ConnectionRefusedError(111, "Connection refused")) == "[Errno 111] Connection refused"
    assert describe_error(EOFError()) == "EOFError"


def test_the_password_never_appears():
    exc = pymysql.err.OperationalError(1045, "Access denied for 'u' using 'hunter2-pw'")
    assert "hunter2-pw" not in describe_error(exc, "hunter2-pw")


def test_control_characters_are_escaped():
    assert (
        describe_error(pymysql.err.OperationalError(1049, "Unknown database 'a\nb'"))
        == "Unknown database 'a\\x0ab' (1049)"
    )
