"""ctnetlink decoding: messages the kernel never sends raise only the decoder's own error
(DecodeError, or the GntError of a netlink error), never IndexError/OverflowError/struct.error."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gnt.conntrack import decode as d
from gnt.conntrack import netlink as nl
from gnt.core import netlink as core_nl
from gnt.errors import DecodeError, GntError

IPCTNL_MSG_CT_NEW = (1 << 8) | 0  # NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_NEW
INT_MIN = -(2**31)


def _message(kind: int, payload: bytes) -> bytes:
    return core_nl.NLMSGHDR.pack(core_nl.NLMSGHDR.size + len(payload), kind, 0, 1, 0) + payload


def test_header_only_ctnetlink_message_is_a_decode_error() -> None:
    raw = _message(IPCTNL_MSG_CT_NEW, b"")  # 16 bytes: no nfgenmsg, no attributes
    ((buf, off, end, _kind, _flags),) = list(nl.split_datagram(raw))
    with pytest.raises(DecodeError):
        d.EntryDecoder().decode(buf, off, end)
    with pytest.raises(DecodeError):
        d.decode_generic(buf, off, end)


@pytest.mark.parametrize("errno_value", [INT_MIN, -(2**31 - 1), -4095, -1])
def test_error_message_with_any_errno_is_one_gnt_error(errno_value: int) -> None:
    raw = _message(core_nl.NLMSG_ERROR, struct.pack("=i", errno_value) + bytes(16))
    with pytest.raises(GntError) as caught:
        list(nl.split_datagram(raw))
    assert caught.value.errno == -errno_value


def test_error_message_without_its_errno_is_a_decode_error() -> None:
    raw = _message(core_nl.NLMSG_ERROR, b"")
    with pytest.raises(DecodeError):
        list(nl.split_datagram(raw))


def test_done_with_errno_int_min_is_one_gnt_error() -> None:
    raw = _message(core_nl.NLMSG_DONE, struct.pack("=i", INT_MIN))
    with pytest.raises(GntError):
        list(nl.split_datagram(raw))


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from([IPCTNL_MSG_CT_NEW, core_nl.NLMSG_ERROR, core_nl.NLMSG_DONE]),
       payload=st.binary(max_size=64), declared=st.integers(0, 96))
def test_short_and_lying_messages_raise_only_the_decoders_error(kind: int, payload: bytes, declared: int) -> None:
    raw = core_nl.NLMSGHDR.pack(declared, kind, 0, 1, 0) + payload
    decoder = d.EntryDecoder()
    try:
        for buf, off, end, msg_kind, _flags in nl.split_datagram(raw):
            if msg_kind >= 0:
                decoder.decode(buf, off, end)
    except GntError:  # DecodeError is one; a netlink error (errno) is another
        pass
