"""The performance phase's harness end: turn records, the suites' client, the desk and the conductor.

Nothing is re-exported here, so that the plugin can load `harness.perf.client` into the suites process
without the conductor and desk (import the modules themselves).
"""
