"""The canary: a gate-blessed challenger serves a growing share of customers as
``@candidate`` beside ``@champion`` while guardrails compare the two on live traffic, then
becomes ``@champion`` or is rolled back.

`evidence` reads what the model server counted (its ``/metrics``, summed over its workers),
`guardrails` judges it with intervals, `controller` walks the steps and records each one.
"""
