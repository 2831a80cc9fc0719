"""The revledger test suite."""
