"""modelpin: per-tenant model version pinning and gated canary rollouts, GitOps style."""

__version__ = "0.1.0"
