"""Pure rollout logic: group DAG, stage ladder, gates, transition engine, fleet state.

Values in, values out: nothing here reads files, git, the network or the clock.
"""
