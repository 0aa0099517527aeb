"""The RPC call counter of the node boot benchmark, on frames built here."""

import os
import socket
import struct
import sys

from hypothesis import given, strategies as st

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))), "benchmarks"))

# pylint: disable=wrong-import-position,import-error
import rpc_capture  # noqa: E402

CLIENT, SERVER = "10.0.0.101", "10.0.0.2"


def frame(seq, payload=b"", syn=False, src=CLIENT, sport=900, dport=2049):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x02 if syn else 0x18, 65535, 0, 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0,
                     socket.inet_aton(src), socket.inet_aton(SERVER)) + tcp
    return b"\x52\x54\x00\x00\x00\x02" + b"\x52\x54\x00\x00\x00\x01" + b"\x08\x00" + ip


def call(xid, procedure, program=100003, body=b"\0" * 40):
    record = struct.pack("!6I", xid, 0, 2, program, 3, procedure) + body
    return struct.pack("!I", 0x80000000 | len(record)) + record


def test_calls_are_counted_by_program_and_procedure():
    data = call(1, 1) + call(2, 3) + call(3, 6) + call(4, 6)
    frames = [frame(999, syn=True), frame(1000, data)]
    assert rpc_capture.count_calls(frames, [2049]) == {"NFS GETATTR": 1, "NFS LOOKUP": 1, "NFS READ": 2}
    frames += [frame(4999, syn=True, dport=20048), frame(5000, call(9, 1, program=100005), dport=20048)]
    assert rpc_capture.count_calls(frames, [2049, 20048])["MOUNT MNT"] == 1


def test_other_clients_ports_and_replies_are_left_out():
    frames = [frame(1, call(1, 6)), frame(1, call(1, 6), src="10.0.0.102"), frame(1, call(1, 6), dport=80)]
    reply = struct.pack("!3I", 1, 1, 0) + b"\0" * 20
    frames.append(frame(100, struct.pack("!I", 0x80000000 | len(reply)) + reply, sport=2049, dport=900))
    assert rpc_capture.count_calls(frames, [2049], client=CLIENT) == {"NFS READ": 1}


def test_a_record_cut_off_at_the_end_is_not_counted():
    data = call(1, 6) + call(2, 6)
    assert rpc_capture.count_calls([frame(1, data[:-3])], [2049]) == {"NFS READ": 1}


@given(st.lists(st.integers(min_value=0, max_value=21), min_size=1, max_size=30),
       st.lists(st.integers(min_value=1, max_value=97), min_size=1, max_size=10),
       st.randoms(use_true_random=False), st.integers(min_value=0, max_value=2 ** 32 - 1))
def test_segmented_reordered_and_retransmitted_streams_count_each_call_once(procedures, cuts, rnd, isn):
    data = b"".join(call(i, p) for i, p in enumerate(procedures))
    segments = []
    pos = 0
    for i in range(len(data)):
        size = cuts[i % len(cuts)]
        if pos >= len(data):
            break
        segments.append(frame((isn + 1 + pos) & 0xFFFFFFFF, data[pos:pos + size]))
        pos += size
    segments += rnd.sample(segments, min(3, len(segments)))  # retransmissions
    rnd.shuffle(segments)
    counts = rpc_capture.count_calls([frame(isn, syn=True)] + segments, [2049])
    expected = {}
    for p in procedures:
        key = "NFS " + rpc_capture.NFS3_PROCEDURES[p]
        expected[key] = expected.get(key, 0) + 1
    assert counts == expected
