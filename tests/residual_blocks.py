"""ResNet's basic block as a spec dict, shared by the graph tests of the engine
(tests/engine/test_graph.py) and of the memory estimate (tests/test_verify.py)."""

#: conv 3×3 → batchnorm → relu → conv 3×3 → batchnorm, plus the block's input, → relu.
BASIC_BLOCK = {"params": {"channels": None}, "layers": [
    {"name": "conv1", "type": "conv", "filters": "$channels", "kernel": 3, "padding": 1,
     "bias": False},
    {"name": "bn1", "type": "batchnorm"}, {"name": "relu1", "type": "relu"},
    {"name": "conv2", "type": "conv", "filters": "$channels", "kernel": 3, "padding": 1,
     "bias": False},
    {"name": "bn2", "type": "batchnorm"},
    {"name": "add", "type": "add", "inputs": ["bn2", "input"]},
    {"name": "relu2", "type": "relu"}]}
