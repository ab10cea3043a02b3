"""PyTorch's CPU LSTM and GRU as a reference in `python -m rnncore.bench --peer torch`.

PyTorch's CPU `nn.LSTM` / `nn.GRU` run a whole sequence as one primitive (oneDNN's where
available); timing them on the same machine, in the same interleaved rounds as Unroll and
Keras, shows how far a TensorFlow implementation is from that. PyTorch is not a dependency
of Unroll or of its CI (its Linux wheel is several GB): without it, `--peer torch` is
refused with a message saying how to install it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

PEERS = ("torch",)
CELLS = ("lstm", "gru")  # the cells PyTorch has in the same form (nn.RNN differs in its biases)


def missing() -> str | None:
    """Why the torch peer cannot run here, or None."""
    if importlib.util.find_spec("torch") is None:
        return "--peer torch needs PyTorch, which is not installed: pip install torch (the CPU build is enough)"
    return None


def make_train_step(
    cell: str, sequence_length: int, hidden: int, batch: int, features: int, classes: int, seed: int = 0
) -> Callable[[], None]:
    """A zero-argument callable running one PyTorch train step (forward, backward, Adam) on fixed data,
    the same shapes and loss as `rnncore.bench.make_train_step`."""
    import torch

    torch.manual_seed(seed)
    layer = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](features, hidden, batch_first=True)
    readout = torch.nn.Linear(hidden, classes, bias=False)
    parameters = [*layer.parameters(), *readout.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=1e-3)
    inputs = torch.randn(batch, sequence_length, features)
    labels = torch.randint(0, classes, (batch,))

    def run() -> None:
        optimizer.zero_grad(set_to_none=True)
        outputs, _ = layer(inputs)
        loss = torch.nn.functional.cross_entropy(readout(outputs[:, -1]), labels)
        loss.backward()
        optimizer.step()
        loss.item()

    return run


def version() -> str:
    import torch

    return f"{torch.__version__}, {torch.get_num_threads()} threads"
