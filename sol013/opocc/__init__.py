"""What LCM operation occurrences have in common, whichever interface they belong to.

The VNFM's VnfLcmOpOcc (SOL003, `vnfm/`) and the NFVO's NsLcmOpOcc (SOL005, `nfvo/nslcm/`)
are stored, leased to workers, recovered after a crash, moved through a state machine and
shown with task links the same way; what differs (states, events, columns, the instance an
occurrence changes) stays with each side.
"""
