"""Fleet -> routing table payload: pure, canonical bytes (docs/routing-table.md)."""
