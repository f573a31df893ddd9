"""Test infrastructure: real servers the tests start and stop themselves."""
