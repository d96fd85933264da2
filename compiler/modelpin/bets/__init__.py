"""BETS: behavioural equivalence test suites run against pin and candidate (SPEC section 7)."""
