"""The PR bot: telemetry sources, decisions (pure), YAML edits, git and GitHub adapters.

``modelpin bot`` wires these to the rollout engine: read telemetry, :func:`decide`
per rollout in flight, edit the tenant file, :func:`publish` the proposal.
"""
