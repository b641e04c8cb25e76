"""envsync's benchmarks: API calls per sync, wall time over many targets, the CLI's
footprint, planner scale, service load, and envsync beside netlify-cli.

`python -m bench` runs them all against the emulators on loopback and writes
docs/BENCHMARKS.md; `python -m bench --help` lists the parts and sizes.
"""
