"""DQN fusion agent: learns, per window, how much to trust the GAT versus the VGAE.

Episodes are runs of consecutive (shuffled per epoch) training windows; the state is the
window's fusion state, the action a fusion weight alpha, the reward +w(y) when the fused decision
is right and -w(y) when wrong (w balances the classes). Replay buffer, target network, Double
DQN targets, linear epsilon schedule. The training skeleton runs the epochs (one step = one
episode and its TD updates) and checkpoints the replay buffer, the target network and every RNG,
so a resumed agent ends with the same weights as an uninterrupted one.

--training.optimizer / lr / weight-decay / scheduler / grad-clip apply as to the graph models.
The agent trains on the CPU whatever --device says (an MLP over ~11 numbers per window gains
nothing from a GPU, and CPU random streams keep it reproducible), so --training.amp bf16 runs its
TD updates under CPU bf16 autocast, auto means off, and fp16 (CUDA only) is refused by configs.
Action choice and validation run in full precision, as evaluation does.
"""

import copy
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter

from configs import ExperimentConfig
from kdgat.evaluation.metrics import binary_metrics
from kdgat.models.dqn import QNetwork
from kdgat.stages.fusion import FusionInputs, StateScaler, alphas, fused_probability, greedy_alpha
from kdgat.training import skeleton
from kdgat.training.checkpoint import RunInfo
from kdgat.training.kd_losses import soft_target_kl
from kdgat.training.loss_log import LossLog
from kdgat.training.optim import Optimisation

CPU = torch.device("cpu")


@dataclasses.dataclass
class ReplayBuffer:
    capacity: int
    state_dim: int
    size: int = 0
    cursor: int = 0

    def __post_init__(self) -> None:
        self.states = torch.zeros(self.capacity, self.state_dim)
        self.next_states = torch.zeros(self.capacity, self.state_dim)
        self.actions = torch.zeros(self.capacity, dtype=torch.long)
        self.rewards = torch.zeros(self.capacity)
        self.done = torch.zeros(self.capacity)
        self.graphs = torch.zeros(self.capacity, dtype=torch.long)  # which window: a teacher's Q-values

    def push(
        self,
        s: torch.Tensor,
        a: torch.Tensor,
        r: torch.Tensor,
        s2: torch.Tensor,
        d: torch.Tensor,
        graphs: torch.Tensor,
    ) -> None:
        for i in range(len(a)):
            self.states[self.cursor], self.actions[self.cursor], self.rewards[self.cursor] = s[i], a[i], r[i]
            self.next_states[self.cursor], self.done[self.cursor] = s2[i], d[i]
            self.graphs[self.cursor] = graphs[i]
            self.cursor = (self.cursor + 1) % self.capacity
            self.size = min(self.size + 1, self.capacity)

    def sample(self, n: int) -> tuple[torch.Tensor, ...]:
        index = torch.randint(self.size, (n,))
        return (
            self.states[index],
            self.actions[index],
            self.rewards[index],
            self.next_states[index],
            self.done[index],
            self.graphs[index],
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            k: getattr(self, k)
            for k in ("size", "cursor", "states", "next_states", "actions", "rewards", "done", "graphs")
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)


class DQNTrainer(skeleton.Trainer):
    """One step = one episode: act epsilon-greedily on its windows, store the transitions, then
    len(episode) // 4 Double-DQN updates from the replay buffer."""

    unit = "window"
    model: QNetwork

    def __init__(
        self,
        cfg: ExperimentConfig,
        q_net: QNetwork,
        train: FusionInputs,
        val: FusionInputs,
        scaler: StateScaler,
        teacher_q: torch.Tensor | None,
    ) -> None:
        lc = cfg.learning_config
        self.cfg, self.train, self.val, self.teacher_q = cfg, train, val, teacher_q
        self.model, self.device = q_net, CPU
        self.target = copy.deepcopy(q_net)
        self.buffer = ReplayBuffer(lc.dqn.buffer_size, train.state.shape[1])
        self.states, self.val_states = scaler(train.state), scaler(val.state)
        counts = np.bincount(train.y, minlength=2).clip(min=1)
        self.class_weight = counts.sum() / (2.0 * counts)
        self.alpha_values = alphas(cfg)
        self.global_step = 0  # agent steps: transitions taken (TensorBoard x-axis)
        self.updates, self.reward_sum, self.epsilon = 0, 0.0, lc.dqn.epsilon_start
        self.losses = LossLog("losses/td")

    def parameters(self) -> list[torch.nn.Parameter]:
        return list(self.model.parameters())

    def batches(self, epoch: int) -> list[torch.Tensor]:
        order = torch.randperm(
            len(self.train.y), generator=skeleton.epoch_generator(self.cfg.training_config.seed, epoch)
        )
        return list(order.split(self.cfg.learning_config.dqn.episode_length))

    def step(
        self, epoch: int, step: int, index: torch.Tensor, opt: Optimisation, writer: SummaryWriter
    ) -> None:
        lc, train, q_net = self.cfg.learning_config, self.train, self.model
        decayed = (lc.dqn.epsilon_start - lc.dqn.epsilon_end) * self.global_step / lc.dqn.epsilon_decay_steps
        self.epsilon = max(lc.dqn.epsilon_end, lc.dqn.epsilon_start - decayed)
        states = self.states[index]
        with torch.no_grad():
            greedy = q_net(states).argmax(1)
        explore = torch.rand(len(index)) < self.epsilon
        actions = torch.where(explore, torch.randint(lc.dqn.actions, (len(index),)), greedy)
        idx = index.numpy()
        alpha = self.alpha_values[actions.numpy()]
        fused = alpha * train.p_gat[idx] + (1 - alpha) * train.p_vgae[idx]
        correct = (fused >= 0.5).astype(np.int64) == train.y[idx]
        rewards = torch.from_numpy(np.where(correct, 1.0, -1.0) * self.class_weight[train.y[idx]]).float()
        next_states = torch.cat([states[1:], states[-1:]])
        done = torch.zeros(len(index))
        done[-1] = 1.0
        self.buffer.push(states, actions, rewards, next_states, done, index)
        self.global_step += len(index)
        self.reward_sum += float(rewards.sum())  # host numbers already: no device sync
        if self.buffer.size >= lc.dqn.batch_size:
            for _ in range(max(1, len(index) // 4)):
                loss, terms = self.td_loss(opt)
                opt.step(loss)
                self.updates += 1
                if self.updates % lc.dqn.target_update == 0:
                    self.target.load_state_dict(q_net.state_dict())
            where = (
                f"epoch {epoch}, update {self.updates} (episode {step} of the epoch, first windows "
                f"{index[:8].tolist()})"
            )
            self.losses.record(loss, terms, len(index), self.global_step, where)
            if self.losses.due:
                self.losses.flush(writer)
        writer.add_scalar("charts/epsilon", self.epsilon, self.global_step)

    def td_loss(self, opt: Optimisation) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Smooth-L1 TD error on a replay sample; with a teacher mixed with policy distillation:
        (1 - kd.alpha) * TD + kd.alpha * T^2 * KL(teacher || agent)."""
        lc = self.cfg.learning_config
        s, a, r, s2, d, g = self.buffer.sample(lc.dqn.batch_size)
        with torch.no_grad(), opt.autocast():
            best_next = self.model(s2).argmax(1, keepdim=True)  # Double DQN: online picks,
            next_q = self.target(s2).gather(1, best_next).squeeze(1).float()  # target evaluates
            goal = r + lc.dqn.gamma * (1 - d) * next_q
        with opt.autocast():
            all_q = self.model(s).float()
        q = all_q.gather(1, a[:, None]).squeeze(1)
        td = torch.nn.functional.smooth_l1_loss(q, goal)
        if self.teacher_q is None:
            return td, {"td": td}
        kd = soft_target_kl(all_q, self.teacher_q[g], lc.kd.temperature)
        return (1 - lc.kd.alpha) * td + lc.kd.alpha * kd, {"td": td, "kd_q_values": kd}

    def sync(self, writer: SummaryWriter) -> None:
        self.losses.flush(writer)

    def end_epoch(self, epoch: int, writer: SummaryWriter) -> skeleton.EpochEnd:
        val_fused = fused_probability(self.val, greedy_alpha(self.model, self.val_states, self.cfg))
        val_metrics = binary_metrics(self.val.y, val_fused)
        return skeleton.EpochEnd(
            monitor=(round(val_metrics["f1"], 6),),
            record={
                "val_f1": val_metrics["f1"],
                "reward_sum": self.reward_sum,
                "epsilon": self.epsilon,
                "updates": self.updates,
            },
            scalars={"charts/val_f1": val_metrics["f1"], "charts/reward_sum": self.reward_sum},
            line=f"val_f1 {val_metrics['f1']:.4f}  epsilon {self.epsilon:.3f}  updates {self.updates}",
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "target": self.target.state_dict(),
            "buffer": self.buffer.state_dict(),
            "agent_steps": self.global_step,
            "updates": self.updates,
            "reward_sum": self.reward_sum,
            "epsilon": self.epsilon,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.target.load_state_dict(state["target"])
        self.buffer.load_state_dict(state["buffer"])
        self.global_step, self.updates = state["agent_steps"], state["updates"]
        self.reward_sum, self.epsilon = state["reward_sum"], state["epsilon"]


def train_dqn(
    cfg: ExperimentConfig,
    q_net: QNetwork,
    train: FusionInputs,
    val: FusionInputs,
    scaler: StateScaler,
    run_dir: Path,
    info: RunInfo,
    teacher_q: torch.Tensor | None = None,
) -> dict[str, Any]:
    """Train the agent with the skeleton; with teacher_q (a teacher's Q-values per training window)
    the TD loss is mixed with policy distillation. best.pt holds the best validation epoch."""
    trainer = DQNTrainer(cfg, q_net, train, val, scaler, teacher_q)
    summary = skeleton.train(cfg, trainer, run_dir, info)
    if trainer.updates == 0:
        lc = cfg.learning_config
        print(
            f"warning: the DQN agent made no update: its {len(train.y)} training windows per epoch never "
            f"filled a replay batch of --learning-config.dqn.batch-size {lc.dqn.batch_size} in "
            f"{summary['epochs_run']} epochs, so it picks alpha with its initial weights. Lower "
            f"dqn-batch-size, or train more epochs or on more windows.",
            flush=True,
        )
    return summary
