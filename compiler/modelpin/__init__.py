"""modelpin: per-tenant foundation-model version pinning and gated canary rollouts, the GitOps way."""

__version__ = "0.1.0"
