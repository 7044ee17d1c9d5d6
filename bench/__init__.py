"""`make bench`: latency, memory, error and FLOP efficiency of every SANet runtime, side by side.

Run with `python -m bench` (see `bench/__main__.py`); results land in bench/results.json and
bench/results.md, the TF.js per-op profile in bench/profile.json and bench/profile.md.
"""
