"""The NAT VNF: carrier-grade NAT44 on the VNF SDK (design and formats: docs/nat.md)."""
