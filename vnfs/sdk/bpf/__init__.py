"""The tc-BPF fast path: the datapath program (flowtable.c) and its Python driver.

`vnfs.sdk.bpf.driver.BpfDriver` is the entry point; `python -m vnfs.sdk.bpf.build`
compiles the program into `vnfs/sdk/bpf/build/` (never committed).
"""
