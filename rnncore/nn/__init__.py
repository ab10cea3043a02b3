"""The recurrent-network library: cells (one step), unrolling (static or dynamic), stacks.

TensorFlow and Keras only: this package never imports db/ or dashboard/ (import-linter
checks it), so it can be used, tested and benchmarked without a database or a run config.
"""
