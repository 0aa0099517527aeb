"""Count the ONC RPC calls (NFSv3, MOUNT) a client sends, from a packet capture.

`Capture(interface)` records every frame on an interface (an AF_PACKET
socket, no tcpdump needed) from start() to stop(). `count_calls(frames,
ports)` follows each TCP stream towards the given server ports in sequence
order (retransmitted bytes are taken once), splits it into RPC records
(RFC 5531 record marking) and counts the calls by program and procedure.
"""

import collections
import socket
import struct
import threading

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_STATISTICS = 6
SO_RCVBUFFORCE = 33

PROGRAMS = {100003: "NFS", 100005: "MOUNT"}
NFS3_PROCEDURES = ("NULL", "GETATTR", "SETATTR", "LOOKUP", "ACCESS", "READLINK", "READ", "WRITE", "CREATE",
                   "MKDIR", "SYMLINK", "MKNOD", "REMOVE", "RMDIR", "RENAME", "LINK", "READDIR", "READDIRPLUS",
                   "FSSTAT", "FSINFO", "PATHCONF", "COMMIT")
MOUNT3_PROCEDURES = ("NULL", "MNT", "DUMP", "UMNT", "UMNTALL", "EXPORT")


class Capture:
    """All frames seen on one interface while running (needs root)."""

    def __init__(self, interface):
        self.interface = interface
        self.frames = []
        self.sock = None
        self.thread = None
        self.running = False

    def start(self):
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
        self.sock.bind((self.interface, 0))
        self.sock.settimeout(0.2)
        self.running = True
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        return self

    def _read(self):
        while self.running:
            try:
                self.frames.append(self.sock.recv(262144))
            except socket.timeout:
                continue
            except OSError:
                break

    def stop(self):
        """Stop and return the number of frames the kernel dropped."""
        self.running = False
        self.thread.join()
        _packets, drops = struct.unpack("II", self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
        self.sock.close()
        return drops


def tcp_segment(frame):
    """(flow, seq, syn, payload) of an Ethernet IPv4 TCP frame, or None."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        return None
    ip = frame[14:]
    if ip[0] >> 4 != 4 or ip[9] != 6:
        return None
    ihl = (ip[0] & 0x0F) * 4
    total = struct.unpack("!H", ip[2:4])[0] or len(ip)
    tcp = ip[ihl:total]
    if len(tcp) < 20:
        return None
    sport, dport, seq = struct.unpack("!HHI", tcp[:8])
    offset = (tcp[12] >> 4) * 4
    flow = (socket.inet_ntoa(ip[12:16]), sport, socket.inet_ntoa(ip[16:20]), dport)
    return flow, seq, bool(tcp[13] & 0x02), tcp[offset:]


def streams(frames, ports):
    """{flow: bytes} of each TCP stream to one of the ports, in sequence order, each byte once."""
    state = {}
    for frame in frames:
        segment = tcp_segment(frame)
        if segment is None or segment[0][3] not in ports:
            continue
        flow, seq, syn, payload = segment
        if syn:
            state[flow] = {"next": (seq + 1) & 0xFFFFFFFF, "data": bytearray(), "early": {}}
            continue
        stream = state.setdefault(flow, {"next": seq, "data": bytearray(), "early": {}})
        if payload:
            stream["early"].setdefault(seq, payload)
        _advance(stream)
    return {flow: bytes(stream["data"]) for flow, stream in state.items()}


def _advance(stream):
    """Append whatever the early segments now continue."""
    moved = True
    while moved:
        moved = False
        for seq in list(stream["early"]):
            payload = stream["early"][seq]
            skip = (stream["next"] - seq) & 0xFFFFFFFF
            if skip >= 1 << 31:
                continue  # still a gap before it
            del stream["early"][seq]
            if skip < len(payload):
                stream["data"] += payload[skip:]
                stream["next"] = (seq + len(payload)) & 0xFFFFFFFF
                moved = True


def rpc_calls(data):
    """The (program, version, procedure) of each RPC call in one stream's bytes."""
    calls = []
    record = b""
    pos = 0
    while pos + 4 <= len(data):
        mark = struct.unpack("!I", data[pos:pos + 4])[0]
        size = mark & 0x7FFFFFFF
        if pos + 4 + size > len(data):
            break  # cut off at the end of the capture
        record += data[pos + 4:pos + 4 + size]
        pos += 4 + size
        if not mark & 0x80000000:
            continue
        if len(record) >= 24:
            _xid, kind, _rpcvers, program, version, procedure = struct.unpack("!6I", record[:24])
            if kind == 0:
                calls.append((program, version, procedure))
        record = b""
    return calls


def name(program, procedure):
    names = {100003: NFS3_PROCEDURES, 100005: MOUNT3_PROCEDURES}.get(program, ())
    return "%s %s" % (PROGRAMS.get(program, str(program)),
                      names[procedure] if procedure < len(names) else str(procedure))


def count_calls(frames, ports, client=None):
    """Counter {"NFS READ": n, ...} of the calls to the ports (from one client address, if given)."""
    counts = collections.Counter()
    for flow, data in streams(frames, set(ports)).items():
        if client is None or flow[0] == client:
            counts.update(name(program, procedure) for program, _version, procedure in rpc_calls(data))
    return counts
