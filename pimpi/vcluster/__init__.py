"""Virtual cluster on one Linux machine: nodes of one kind (network namespaces or QEMU VMs, see backends/)."""
