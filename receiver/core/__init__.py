"""The sans-IO core: status model, normalized reports, signature schemes, SMS segments,
rate limits and Idempotency-Keys.

Nothing in this package performs I/O or imports Starlette or a database driver;
every function takes bytes, headers, secrets and a clock, and returns data.
"""
