"""The recurrent-network library: cells (one step), unrolling (static or dynamic), stacks.

- core.py: the contract, as Sonnet declares it: StepCore (one step at a time) and
  SequenceCore (a whole sequence at once, as the SRU does), and masked_update, the one
  place variable lengths are masked.
- rules.py: which layer options go together, in the run config's own words (a test keeps
  them equal to db/run_config.py, which this package may not import).
- cells.py, unroll.py, network.py: the cells, static_unroll / dynamic_unroll, and stacks.

TensorFlow and Keras only: this package never imports db/ or dashboard/ (import-linter
checks it), so it can be used, tested and benchmarked without a database or a run config.
"""
