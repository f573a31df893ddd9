"""The VIM registry: the VIMs the NFVO may place VNFs on, their credentials, and placement."""
