"""Building `descriptors.vnfd` models from templates tosca-parser has parsed and validated.

`top_level.build_vnfd` is the entry point (`descriptors.tosca.parse_vnfd`
calls it); `flavour` builds one deployment flavour from its parsed template,
with `nodes` (VDUs, storage, virtual links), `artifacts`, `policies` and
`references` (cross-reference checks TOSCA cannot make); `values` and
`type_names` are the shared helpers.
"""
