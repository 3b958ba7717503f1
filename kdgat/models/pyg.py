"""The PyTorch Geometric layers kdgat uses, imported without torch_geometric's import-time warning.

torch_geometric 2.8.1 (the pinned, newest release) scripts two small classes when it is imported
(`SelectOutput = torch.jit.script(SelectOutput)` in nn/pool/select/base.py, the same for
ConnectOutput), and torch >= 2.12 deprecates torch.jit.script, so every `import torch_geometric`
emits "DeprecationWarning: `torch.jit.script` is deprecated" (pyg-team/pytorch_geometric#10697,
fix not yet released). kdgat uses no TorchScript. The filter below ignores exactly that message
from exactly that function, and only while torch_geometric is first imported: any other warning,
and the same warning raised by code that does call torch.jit.script later, still shows. Remove
it when the pin moves to a release with the fix.
"""

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore",
        message=r"`torch\.jit\.script` is deprecated",
        category=DeprecationWarning,
        module=r"torch\.jit\._script",
    )
    from torch_geometric.nn import (
        GATv2Conv,
        JumpingKnowledge,
        SAGEConv,
        global_add_pool,
        global_max_pool,
        global_mean_pool,
    )

__all__ = [
    "GATv2Conv",
    "JumpingKnowledge",
    "SAGEConv",
    "global_add_pool",
    "global_max_pool",
    "global_mean_pool",
]
