"""Virtual cluster: network-namespace hosts on one Linux machine."""
