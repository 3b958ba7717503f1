"""kdgat: graph-based CAN intrusion detection with knowledge distillation, in plain PyTorch."""
