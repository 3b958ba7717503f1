"""DQN fusion agent: learns, per window, how much to trust the GAT versus the VGAE.

Episodes are runs of consecutive (shuffled per epoch) training windows; the state is the
window's fusion state, the action a fusion weight alpha, the reward +w(y) when the fused decision
is right and -w(y) when wrong (w balances the classes). Replay buffer, target network, Double
DQN targets, linear epsilon schedule. Checkpoints hold the replay buffer and every RNG, so a
resumed agent ends with the same weights as an uninterrupted one.
"""

import copy
import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter

from configs import ExperimentConfig, to_yaml
from kdgat.fusion import FusionInputs, fused_probability
from kdgat.io import atomic_torch_save
from kdgat.kd_losses import soft_target_kl
from kdgat.loop import (
    EarlyStopping,
    Preempted,
    StopSignal,
    rng_state,
    save_epoch_end,
    seed_everything,
    set_rng_state,
)
from kdgat.metrics import binary_metrics
from kdgat.models.dqn import QNetwork


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


class StateScaler:
    """Standardises fusion states with statistics of the training states."""

    def __init__(self, train_state: np.ndarray) -> None:
        self.mean = train_state.mean(0)
        self.std = np.maximum(train_state.std(0), 1e-6)

    def state_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_state(cls, state: dict[str, list[float]]) -> "StateScaler":
        scaler = cls.__new__(cls)
        scaler.mean, scaler.std = np.asarray(state["mean"]), np.asarray(state["std"])
        return scaler

    def __call__(self, state: np.ndarray) -> torch.Tensor:
        return torch.from_numpy((state - self.mean) / self.std).float()


def alphas(cfg: ExperimentConfig) -> np.ndarray:
    return np.linspace(0.0, 1.0, cfg.learning_config.dqn_actions)


def greedy_alpha(q_net: QNetwork, states: torch.Tensor, cfg: ExperimentConfig) -> np.ndarray:
    with torch.no_grad():
        return alphas(cfg)[q_net(states).argmax(1).numpy()]


def train_dqn(
    cfg: ExperimentConfig,
    q_net: QNetwork,
    train: FusionInputs,
    val: FusionInputs,
    scaler: StateScaler,
    run_dir: Path,
    extra_state: dict[str, Any],
    teacher_q: torch.Tensor | None = None,
) -> dict[str, Any]:
    """Train the agent; with teacher_q (a teacher's Q-values per training window) the TD loss is
    mixed with policy distillation: (1 - kd_alpha) * TD + kd_alpha * T^2 * KL(teacher || agent)."""
    lc, t = cfg.learning_config, cfg.training_config
    ckpt_dir = run_dir / "checkpoints"
    ckpt_dir.mkdir(exist_ok=True)
    last_path = ckpt_dir / "last.pt"
    seed_everything(t.seed)
    target = copy.deepcopy(q_net)
    optimizer = torch.optim.Adam(q_net.parameters(), lr=t.lr)
    buffer = ReplayBuffer(lc.dqn_buffer_size, train.state.shape[1])
    stopper = EarlyStopping(t.patience)
    state_t, val_state = scaler(train.state), scaler(val.state)
    counts = np.bincount(train.y, minlength=2).clip(min=1)
    class_weight = counts.sum() / (2.0 * counts)
    alpha_values = alphas(cfg)
    start_epoch, start_episode, agent_steps, updates = 0, 0, 0, 0
    history: list[dict[str, Any]] = []
    reward_sum = 0.0
    if last_path.is_file():
        saved = torch.load(last_path, weights_only=False)
        q_net.load_state_dict(saved["model"])
        target.load_state_dict(saved["target"])
        optimizer.load_state_dict(saved["optimizer"])
        buffer.load_state_dict(saved["buffer"])
        stopper = EarlyStopping(**saved["early_stopping"])
        start_epoch, start_episode = saved["epoch"], saved["episode"]
        agent_steps, updates, reward_sum, history = (
            saved["agent_steps"],
            saved["updates"],
            saved["reward_sum"],
            saved["history"],
        )
        set_rng_state(saved["rng"])
    writer = SummaryWriter(str(run_dir), purge_step=agent_steps or None)
    if not agent_steps:
        writer.add_text("config", "```\n" + to_yaml(cfg) + "```")

    def checkpoint(epoch: int, episode: int) -> dict[str, Any]:
        return {
            "model": q_net.state_dict(),
            "target": target.state_dict(),
            "optimizer": optimizer.state_dict(),
            "buffer": buffer.state_dict(),
            "early_stopping": dataclasses.asdict(stopper),
            "epoch": epoch,
            "episode": episode,
            "agent_steps": agent_steps,
            "updates": updates,
            "reward_sum": reward_sum,
            "history": history,
            "rng": rng_state(),
            **extra_state,
        }

    with StopSignal() as stop:
        for epoch in range(start_epoch, t.epochs):
            if stopper.should_stop:
                break
            started = time.perf_counter()
            generator = torch.Generator().manual_seed(t.seed * 100_003 + epoch)
            order = torch.randperm(len(train.y), generator=generator)
            episodes = list(order.split(lc.dqn_episode_length))
            for episode, index in enumerate(episodes):
                if episode < start_episode:
                    continue
                epsilon = max(
                    lc.dqn_epsilon_end,
                    lc.dqn_epsilon_start
                    - (lc.dqn_epsilon_start - lc.dqn_epsilon_end) * agent_steps / lc.dqn_epsilon_decay_steps,
                )
                states = state_t[index]
                with torch.no_grad():
                    greedy = q_net(states).argmax(1)
                explore = torch.rand(len(index)) < epsilon
                actions = torch.where(explore, torch.randint(lc.dqn_actions, (len(index),)), greedy)
                idx = index.numpy()
                fused = (
                    alpha_values[actions.numpy()] * train.p_gat[idx]
                    + (1 - alpha_values[actions.numpy()]) * train.p_vgae[idx]
                )
                correct = (fused >= 0.5).astype(np.int64) == train.y[idx]
                rewards = torch.from_numpy(np.where(correct, 1.0, -1.0) * class_weight[train.y[idx]]).float()
                next_states = torch.cat([states[1:], states[-1:]])
                done = torch.zeros(len(index))
                done[-1] = 1.0
                buffer.push(states, actions, rewards, next_states, done, index)
                agent_steps += len(index)
                reward_sum += float(rewards.sum())
                if buffer.size >= lc.dqn_batch_size:
                    for _ in range(max(1, len(index) // 4)):
                        s, a, r, s2, d, g = buffer.sample(lc.dqn_batch_size)
                        with torch.no_grad():
                            best_next = q_net(s2).argmax(1, keepdim=True)  # Double DQN: online picks,
                            next_q = target(s2).gather(1, best_next).squeeze(1)  # target evaluates
                            goal = r + lc.dqn_gamma * (1 - d) * next_q
                        all_q = q_net(s)
                        q = all_q.gather(1, a[:, None]).squeeze(1)
                        loss = torch.nn.functional.smooth_l1_loss(q, goal)
                        if teacher_q is not None:
                            kd = soft_target_kl(all_q, teacher_q[g], lc.kd_temperature)
                            loss = (1 - lc.kd_alpha) * loss + lc.kd_alpha * kd
                        optimizer.zero_grad(set_to_none=True)
                        loss.backward()
                        if t.grad_clip > 0:
                            torch.nn.utils.clip_grad_norm_(q_net.parameters(), t.grad_clip)
                        optimizer.step()
                        updates += 1
                        if updates % lc.dqn_target_update == 0:
                            target.load_state_dict(q_net.state_dict())
                    writer.add_scalar("losses/td", loss.item(), agent_steps)
                writer.add_scalar("charts/epsilon", epsilon, agent_steps)
                if stop.received is not None:
                    atomic_torch_save(last_path, checkpoint(epoch, episode + 1))
                    writer.close()
                    raise Preempted(
                        f"signal {stop.received} at epoch {epoch}, episode {episode + 1}", stop.signals
                    )
            start_episode = 0
            val_fused = fused_probability(val, greedy_alpha(q_net, val_state, cfg))
            val_metrics = binary_metrics(val.y, val_fused)
            improved = stopper.update(epoch, (round(val_metrics["f1"], 6),))
            history.append(
                {"epoch": epoch, "val_f1": val_metrics["f1"], "reward_sum": reward_sum, "epsilon": epsilon}
            )
            writer.add_scalar("charts/val_f1", val_metrics["f1"], epoch)
            writer.add_scalar("charts/reward_sum", reward_sum, epoch)
            writer.add_scalar("charts/epoch_seconds", time.perf_counter() - started, epoch)
            save_epoch_end(ckpt_dir, improved, q_net, epoch, extra_state, checkpoint(epoch + 1, 0))
            print(
                f"epoch {epoch + 1}/{t.epochs}  val_f1 {val_metrics['f1']:.4f}  epsilon {epsilon:.3f}"
                f"{'  *' if improved else ''}",
                flush=True,
            )
    writer.close()
    return {
        "best_epoch": stopper.best_epoch,
        "epochs_run": len(history),
        "stopped_early": stopper.should_stop,
        "history": history,
    }
