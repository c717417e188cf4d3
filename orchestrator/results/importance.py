"""`ganorch results importance`: which searched hyperparameters the metric depends on.

Computed from the trials table, not from a live study, so it works on any finished, resumed or
object-store run: the finished trials with a finite metric become an in-memory Optuna study
(each searched knob with the distribution the spec gave it) and Optuna's evaluator ranks them:
``fanova`` (functional ANOVA on a random forest, Hutter et al. 2014) or ``ped-anova``
(PED-ANOVA, Watanabe et al. 2023, on the top 10% of trials). A knob is one of the spec's
``space`` keys; with several families or variants, ``family`` and ``variant`` are knobs too.
A family-prefixed knob (``wgan.n_critic``) exists only in its family's trials, so it is ranked
within those trials, beside the knobs they share; its row says over how many trials.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import yaml

from orchestrator.errors import UserError
from orchestrator.runs import RunDir, local_folder
from orchestrator.sweep.space import Choice, IntRange, LogUniform, Uniform
from orchestrator.sweep.spec import ExperimentSpec, parse_spec
from orchestrator.tables import Table

EVALUATORS = ("fanova", "ped-anova")
MIN_TRIALS = 4  # below this no evaluator says anything a reader should act on


@dataclass(frozen=True)
class Importance:
    knob: str
    importance: float  # the evaluator's share, summing to 1 over one group of trials
    trials: int  # finished trials it was computed over
    scope: str  # "all" or the family whose trials a prefixed knob was ranked within


def importance(
    name: str, metric: str | None = None, evaluator: str = "fanova", runs_dir: str | None = None
) -> tuple[str, list[Importance]]:
    """(metric, importances sorted high to low) of run ``name``'s searched knobs."""
    if evaluator not in EVALUATORS:
        raise UserError(f"--evaluator must be one of {', '.join(EVALUATORS)}, got {evaluator!r}")
    run = RunDir.of(runs_dir, name).existing()
    spec = parse_spec(yaml.safe_load(run.read_text("spec.yaml") or "") or {})
    metric = metric or f"best_{spec.metric.name}"
    trials = Table(run.tables, "trials").read().to_pylist()
    if trials and metric not in trials[0]:
        raise UserError(f"--metric: the trials table has no column {metric!r}")
    scored = [t for t in trials if _finite(t.get(metric)) and t["status"] == "TERMINATED"]
    knobs = _knobs(spec)
    if not knobs:
        raise UserError(f"run {name!r} searched no hyperparameters (its spec has no space)")
    # PED-ANOVA looks at the best trials, so it needs to know which end is best.
    direction = (
        "maximize"
        if (spec.metric.mode == "max" and metric.endswith(spec.metric.name))
        else "minimize"
    )
    rank = dict(knobs=knobs, metric=metric, evaluator=evaluator, direction=direction, run_name=name)
    shared = [k for k in knobs if "." not in k]
    results = _ranked(scored, shared, scope="all", **rank) if shared else []
    for family in spec.family:
        own = [k for k in knobs if k.startswith(f"{family}.")]
        if own:
            subset = [t for t in scored if t["family"] == family]
            ranked = _ranked(subset, shared + own, scope=family, **rank)
            results += [r for r in ranked if r.knob in own]
    return metric, sorted(results, key=lambda r: (r.scope != "all", r.scope, -r.importance))


def _knobs(spec: ExperimentSpec) -> dict[str, Any]:
    """Searched knob -> Optuna distribution (``family``/``variant`` when several)."""
    import optuna.distributions as od

    knobs: dict[str, Any] = {}
    if len(spec.family) > 1:
        knobs["family"] = od.CategoricalDistribution(list(spec.family))
    if len(spec.variants) > 1:
        knobs["variant"] = od.CategoricalDistribution(list(spec.variants))
    for key, dimension in spec.space.items():
        if isinstance(dimension, Choice):
            if len(dimension.values) > 1:
                knobs[key] = od.CategoricalDistribution(list(dimension.values))
        elif isinstance(dimension, IntRange):
            knobs[key] = od.IntDistribution(dimension.low, dimension.high)
        elif isinstance(dimension, (Uniform, LogUniform)):
            log = isinstance(dimension, LogUniform)
            knobs[key] = od.FloatDistribution(dimension.low, dimension.high, log=log)
    return knobs


def _ranked(
    trials: list[dict[str, Any]],
    names: list[str],
    *,
    knobs: dict[str, Any],
    metric: str,
    evaluator: str,
    direction: str,
    scope: str,
    run_name: str,
) -> list[Importance]:
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "study created" line per call
    if len(trials) < MIN_TRIALS:
        where = "" if scope == "all" else f" of family {scope}"
        raise UserError(
            f"run {run_name!r} has {len(trials)} finished trial(s){where} with a finite "
            f"{metric}; importance needs at least {MIN_TRIALS}"
        )
    study = optuna.create_study(direction=direction)
    for trial in trials:
        params = {k: _value(trial, k) for k in names}
        study.add_trial(
            optuna.trial.create_trial(
                params=params,
                distributions={k: knobs[k] for k in names},
                value=float(trial[metric]),
            )
        )
    if evaluator == "fanova":
        chosen = optuna.importance.FanovaImportanceEvaluator(seed=0)
    else:
        chosen = optuna.importance.PedAnovaImportanceEvaluator()
    with warnings.catch_warnings():  # PED-ANOVA is marked experimental in Optuna
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        shares = optuna.importance.get_param_importances(study, evaluator=chosen, normalize=True)
    return [Importance(k, float(v), len(trials), scope) for k, v in shares.items()]


def _value(trial: dict[str, Any], knob: str) -> Any:
    if knob in ("family", "variant"):
        return trial[knob]
    return trial[f"config/{knob.split('.', 1)[-1]}"]


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def render(metric: str, rows: list[Importance]) -> str:
    width = max(len(r.knob) for r in rows)
    lines = [f"importance of each searched hyperparameter for {metric}"]
    for row in rows:
        scope = "trials" if row.scope == "all" else f"{row.scope} trials"
        bar = "#" * round(row.importance * 40)
        lines.append(
            f"{row.knob:<{width}}  {row.importance:6.3f}  {bar:<40}  ({row.trials} {scope})"
        )
    return "\n".join(lines)


def draw(run: RunDir, metric: str, rows: list[Importance], evaluator: str) -> PurePath:
    """:func:`chart` into the run's ``artifacts/importance.png``."""
    with local_folder(run.location("artifacts")) as out:
        (out / "importance.png").write_bytes(chart(metric, rows, evaluator))
    return run.artifacts / "importance.png"


def chart(metric: str, rows: list[Importance], evaluator: str) -> bytes:
    """A bar chart of ``rows``, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [r.knob if r.scope == "all" else f"{r.knob} ({r.scope})" for r in rows]
    figure, axes = plt.subplots(figsize=(6.4, 0.5 + 0.4 * len(rows)))
    axes.barh(labels[::-1], [r.importance for r in rows][::-1], color="#4878a8")
    axes.set_xlabel(f"importance for {metric} ({evaluator}; shares sum to 1 per scope)")
    axes.set_xlim(0, 1)
    axes.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()
