"""Fine-tuning a trained VGAE on a target vehicle's calibration windows (kdgat.evaluate --fine-tune-epochs).

The calibration capture is given as attack-free, so its windows are what the autoencoder should
reconstruct well on the new car: a few epochs of the VGAE's own loss on them (a tenth of the run's
learning rate, so the model moves towards the car rather than forgetting what normal CAN traffic
looks like). The run's threshold then decides as before: fine-tuning brings the car's benign
reconstruction errors back to the scale the threshold was chosen on. No label is read: every
calibration window is trained on.
"""

import copy
import dataclasses

import torch

from configs import ExperimentConfig
from kdgat.data.graphs import Graphs
from kdgat.data.graphset import gather_graphs
from kdgat.training.optim import Optimisation
from kdgat.training.skeleton import epoch_generator
from kdgat.training.tasks import VGAETask

LR_SCALE = 0.1


def fine_tune_vgae(
    cfg: ExperimentConfig, model: torch.nn.Module, graphs: Graphs, epochs: int, device: torch.device
) -> torch.nn.Module:
    """A copy of model trained `epochs` epochs on all of graphs (the original is left as it was)."""
    tuned = copy.deepcopy(model).to(device)
    training = dataclasses.replace(cfg.training_config, lr=cfg.training_config.lr * LR_SCALE, epochs=epochs)
    slow = dataclasses.replace(cfg, training_config=training)  # the schedule spans the fine-tuning
    optimisation = Optimisation(slow, list(tuned.parameters()), device)
    task = VGAETask(slow, graphs)
    for epoch in range(epochs):
        tuned.train()
        order = torch.randperm(len(graphs), generator=epoch_generator(cfg.training_config.seed, epoch))
        for index in order.split(cfg.training_config.batch_size):
            batch = gather_graphs(graphs, index).to(device)
            with optimisation.autocast():
                loss, _ = task.loss(tuned, batch)
            optimisation.step(loss)
        optimisation.end_epoch()
    tuned.eval()
    return tuned
