"""A small boot network and its nodes, shared by the unit tests of the fleet model and of the boot engine."""

NETWORK = {
    "subnet": "10.0.0.0/24",
    "dhcp_mode": "authoritative",
    "unknown_nodes": "discovery",
    "dynamic_range": {"start": "10.0.0.200", "end": "10.0.0.219"},
    "servers": [{"name": "s1", "address": "10.0.0.2"}, {"name": "s2", "address": "10.0.0.3"}],
}


def node(name="n1", mac="52:54:00:00:00:01", ip="10.0.0.11", **extra):
    """A node of that network, booting image 2026.11.0 unless ``extra`` says otherwise."""
    return dict(dict(name=name, mac=mac, ip=ip, image="2026.11.0"), **extra)
