"""The pure core: values, rules, wire formats, errors, retry and redaction policies.

Nothing here does I/O or imports a transport or framework; the adapters and
clients build on it.
"""
