"""Helpers of the property-based fuzz tests (tests/test_fuzz.py): settings profiles, mutation strategies, the
one-line error property, and a child process that loads bundles so a native crash or a hang is a finding, not the
end of the test run."""
