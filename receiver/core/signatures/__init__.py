"""Signature schemes, one module each; pure functions over bytes, headers and a clock."""
