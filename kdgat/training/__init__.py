"""How every model is trained (DESIGN §9).

skeleton       the one epoch loop: resume, signals, checkpoints, early stopping, TensorBoard, lines
optim          optimizer, LR schedule, AMP and clipping from --training.*
loss_log       per-step losses kept on the device, read once per interval; the NaN guard
graph_trainer  the graph models' epoch (VGAE, GAT, fusion GAT, students) and their prediction
tasks          what a graph model learns and how it is scored
kd_losses      the distillation losses (pure functions)

The DQN agent's epoch is kdgat.stages.dqn_agent; it runs on the same skeleton.
"""
