"""SOL003 VNF Lifecycle Operation Granting, served by the NFVO on ``/grant/v1`` (API 1.7.0).

- ``POST /grants`` decides synchronously (201 with the Grant and ``Location``) unless the
  request carries ``Prefer: respond-async`` (RFC 7240) or the service runs with
  ``grant_async`` (``NFVO_GRANT_ASYNC=on``): then 202 with ``Location`` and an empty body,
  and ``GET /grants/{grantId}`` answers 202 while pending, 200 with the Grant once granted,
  403 with a ProblemDetails once rejected. A synchronous rejection is a 403 with a
  ProblemDetails whose ``detail`` names the reason (capacity numbers, unknown or disabled
  VNFD, resources the VNFD does not declare). Every request and decision is kept in the
  ``grants`` table.
- ``vimType`` convention: the ETSI NFV registry's names for standard VIMs
  (``ETSINFV.OPENSTACK_KEYSTONE.V_3``, ``ETSINFV.KUBERNETES.V_1``); the project's local lab
  VIM, which the registry does not know, is ``NFVMANO.LOCAL.V_1`` (same pattern, the project's
  prefix instead of the registry's). See ``placement.VIM_TYPES``.
- Capacity is checked against the VIM's inventory with allocation ratios (vCPU 16, memory 1 by
  default: ``grant_cpu_allocation_ratio``, ``grant_memory_allocation_ratio``).
"""
