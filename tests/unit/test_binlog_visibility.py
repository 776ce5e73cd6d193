"""Binlog coordinates compare across file rotations (pushsvc/binlog/visibility.py)."""

from __future__ import annotations

from pushsvc.binlog import BinlogCoordinate


def test_offsets_compare_within_a_file():
    end = BinlogCoordinate("mariadb-bin.000007", 1200)
    assert BinlogCoordinate("mariadb-bin.000007", 1200).at_or_past(end)
    assert BinlogCoordinate("mariadb-bin.000007", 1201).at_or_past(end)
    assert not BinlogCoordinate("mariadb-bin.000007", 1199).at_or_past(end)


def test_a_later_file_is_past_any_offset_of_an_earlier_one():
    end = BinlogCoordinate("mariadb-bin.000009", 900_000)
    assert BinlogCoordinate("mariadb-bin.000010", 4).at_or_past(end)
    assert not BinlogCoordinate("mariadb-bin.000008", 10**9).at_or_past(end)
    # By sequence number, not text: .999999 rolls over to .1000000.
    assert BinlogCoordinate("mariadb-bin.1000000", 4).at_or_past(BinlogCoordinate("mariadb-bin.999999", 5))


def test_names_without_a_sequence_never_hold_a_read_back():
    assert BinlogCoordinate("odd-name", 1).at_or_past(BinlogCoordinate("mariadb-bin.000002", 500))
