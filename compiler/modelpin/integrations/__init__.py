"""Drop-in integrations of ``modelpin.router`` into gateways people already run.

``modelpin.integrations.litellm``: a LiteLLM proxy hook (install ``modelpin[litellm]``).
The modules here depend on ``modelpin.router`` only, never on the compiler.
"""
