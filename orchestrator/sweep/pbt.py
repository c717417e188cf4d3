"""Population Based Training: the scheduler of ``scheduler: {name: pbt}`` and its search space.

Tune's PBT explores by itself: the initial configs are drawn at random from ``space`` (Tune's
own random search, seeded), and every ``perturbation_interval`` epochs a trial in the bottom
``quantile_fraction`` takes over the latest checkpoint of one in the top share, with its
``mutations`` knobs resampled or scaled by 0.8 or 1.2 and kept within their ranges. The
trainable applies the mutated values after loading the donor's checkpoint and reports which
checkpoint it continued (``exploited_from``) and the values in force (``config/<knob>``).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ray import tune
from ray.tune.schedulers import PopulationBasedTraining
from ray.tune.search.basic_variant import BasicVariantGenerator

from orchestrator.sweep.space import Choice, Dimension, IntRange, LogUniform, Uniform
from orchestrator.sweep.spec import ExperimentSpec
from trainables.families import family_class


def tune_domain(dimension: Dimension) -> Any:
    """Tune's sampling domain (or list, for PBT's neighbouring-choice moves) of a dimension."""
    match dimension:
        case Choice(values):
            return list(values)
        case IntRange(low, high):
            return tune.randint(low, high + 1)
        case Uniform(low, high):
            return tune.uniform(low, high)
        case LogUniform(low, high):
            return tune.loguniform(low, high)


def pbt_param_space(spec: ExperimentSpec) -> dict[str, Any]:
    """The config every trial starts from: its family, ``fixed``, ``space`` as Tune domains
    (a list is a random choice here), and every mutated knob that neither sets at its
    family's default (PBT can only mutate keys the config has)."""
    family = spec.family[0]
    space = {
        key: tune.choice(list(d.values)) if isinstance(d, Choice) else tune_domain(d)
        for key, d in spec.space.items()
    }
    defaults = family_class(family).all_params()
    missing = {
        key: defaults[key.split(".", 1)[-1]].default
        for key in spec.scheduler.mutations
        if key not in spec.space and key not in spec.fixed
    }
    return {"family": family, **spec.fixed, **missing, **space}


@dataclass(frozen=True)
class WithinRanges:
    """PBT's ``custom_explore_fn``: a value scaled out of its mutation range is put back at
    the nearest end (Tune scales by 0.8/1.2 without looking at bounds)."""

    mutations: Mapping[str, Dimension]

    def __call__(self, config: dict[str, Any]) -> dict[str, Any]:
        for key, dimension in self.mutations.items():
            if isinstance(dimension, IntRange | Uniform | LogUniform):
                config[key] = type(config[key])(
                    min(max(config[key], dimension.low), dimension.high)
                )
        return config


class EpochPBT(PopulationBasedTraining):
    """PBT that leaves a trial's last epoch alone: an exploit there would give the trial
    another's checkpoint and config with no epoch left to train, and its row in the trials
    table a config it never trained with."""

    def __init__(self, last_epoch: int, **options: Any) -> None:
        super().__init__(**options)
        self.last_epoch = last_epoch

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if result.get(self._time_attr, 0) >= self.last_epoch:
            return self.CONTINUE
        return super().on_trial_result(tune_controller, trial, result)


def pbt_scheduler(spec: ExperimentSpec) -> tuple[PopulationBasedTraining, BasicVariantGenerator]:
    """PBT over epochs (synchronous: every trial reaches the interval before exploits, so a
    trial continues a donor's checkpoint of the same epoch) and the seeded random search of
    its initial configs."""
    pbt = spec.scheduler
    random.seed(pbt.seed)  # Tune's PBT draws its choices from the random module
    scheduler = EpochPBT(
        spec.epochs,
        time_attr="training_iteration",
        perturbation_interval=pbt.perturbation_interval,
        hyperparam_mutations={key: tune_domain(d) for key, d in pbt.mutations.items()},
        quantile_fraction=pbt.quantile_fraction,
        resample_probability=pbt.resample_probability,
        custom_explore_fn=WithinRanges(dict(pbt.mutations)),
        log_config=False,
        synch=True,
    )
    return scheduler, BasicVariantGenerator(random_state=pbt.seed)
