"""How every model is trained: the loop skeleton, optimisation, and the graph models' epoch; it knows
no stage (docs/architecture.md#layers).

skeleton       the one epoch loop: resume, signals, checkpoints, early stopping, TensorBoard, lines
optim          optimizer, LR schedule, AMP and clipping from --training.*
loss_log       per-step losses kept on the device, read once per interval; the NaN guard
graph_trainer  the graph models' epoch (VGAE, GAT, fusion GAT, students) and their prediction
tasks          what a graph model learns and how it is scored
kd_losses      the distillation losses (pure functions)

The DQN agent's epoch (kdgat.stages.dqn_agent) runs on the same skeleton; it lives with the DQN
stage because its state and reward are the fusion's (kdgat.stages.fusion).
"""
