"""TensorBoard's HPARAMS tab for a run, written from its trials table.

The tab needs one *experiment* summary at the TensorBoard root (every hyperparameter with its
domain, and the metrics) and, in each trial's folder, a *session start* (that trial's values)
and a *session end* (its status). The metric values themselves are the scalars each trial
already logs under the same tags, so the tab shows the last value of each.

Everything is regenerated from the tables after every ``sweep run`` (fresh, resumed or
finished): the previous hparams files are replaced, so trials that errored, were resumed or
belong to one family of a mixed sweep all appear once. Values are plain Python types (the
tables give no numpy scalars); a trial lacking a knob (another family's prefixed key) leaves
it out of its session rather than writing None, which TensorBoard would turn into a string.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
from google.protobuf import struct_pb2
from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from torch.utils.tensorboard.writer import FileWriter

from orchestrator.runs import RunDir
from orchestrator.sweep.space import Choice, IntRange, LogUniform, Uniform
from orchestrator.sweep.spec import ExperimentSpec
from orchestrator.tables import Table
from trainables.families import family_class

SUFFIX = ".hparams"  # the files this module owns, replaced on every write
STATUS = {"TERMINATED": api_pb2.STATUS_SUCCESS, "ERROR": api_pb2.STATUS_FAILURE}
CONFIG = "config/"


def write_hparams(spec: ExperimentSpec, run: RunDir) -> int:
    """Write the run's HPARAMS data into ``tb/``; returns the number of sessions written."""
    trials = Table(run.tables, "trials").read().to_pylist()
    if not trials:
        return 0
    names = sorted({key for trial in trials for key in trial if key.startswith(CONFIG)})
    values = {name: [t[name] for t in trials if t.get(name) is not None] for name in names}
    infos = [_info("family", list(spec.family))]
    if spec.variants:
        infos.append(_info("variant", list(spec.variants)))
    infos += [
        _info(name[len(CONFIG) :], values[name], _dimension(spec, name[len(CONFIG) :]))
        for name in names
        if values[name]
    ]
    metrics = [f"best_{spec.metric.name}"] + sorted(
        {m for family in spec.family for m in family_class(family).reported_metrics()}
        - {f"best_{spec.metric.name}"}
    )
    experiment = api_pb2.Experiment(
        hparam_infos=infos,
        metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=m)) for m in metrics],
    )
    files = {"": [_summary(metadata.EXPERIMENT_TAG, experiment=experiment)]}
    for trial in trials:
        hparams = {"family": trial["family"]}
        if spec.variants and trial.get("variant") is not None:
            hparams["variant"] = trial["variant"]
        hparams |= {
            name[len(CONFIG) :]: trial[name] for name in names if trial.get(name) is not None
        }
        start = plugin_data_pb2.SessionStartInfo(group_name=trial["trial_id"])
        for key, value in hparams.items():
            start.hparams[key].CopyFrom(_value(value))
        status = STATUS.get(trial["status"], api_pb2.STATUS_RUNNING)
        end = plugin_data_pb2.SessionEndInfo(status=status)
        files[trial["trial_id"]] = [
            _summary(metadata.SESSION_START_INFO_TAG, session_start_info=start),
            _summary(metadata.SESSION_END_INFO_TAG, session_end_info=end),
        ]
    _replace_files(run, files)
    return len(trials)


def _dimension(spec: ExperimentSpec, knob: str) -> Any:
    """The spec's search dimension of ``knob`` (plain or family-prefixed), if searched."""
    for key, dimension in spec.space.items():
        if key == knob or key.split(".", 1)[-1] == knob:
            return dimension
    return None


def _info(name: str, seen: list[Any], dimension: Any = None) -> api_pb2.HParamInfo:
    """A hyperparameter's type and domain: the spec's range or list where it is searched,
    otherwise the values the trials took."""
    info = api_pb2.HParamInfo(name=name, type=_type(seen[0]))
    if isinstance(dimension, (IntRange, Uniform, LogUniform)):
        info.domain_interval.min_value = float(dimension.low)
        info.domain_interval.max_value = float(dimension.high)
        return info
    choices = list(dimension.values) if isinstance(dimension, Choice) else seen
    distinct = list(dict.fromkeys(choices))
    info.domain_discrete.CopyFrom(struct_pb2.ListValue(values=[_value(v) for v in distinct]))
    return info


def _type(value: Any) -> int:
    if isinstance(value, bool):
        return api_pb2.DATA_TYPE_BOOL
    if isinstance(value, (int, float)):
        return api_pb2.DATA_TYPE_FLOAT64
    return api_pb2.DATA_TYPE_STRING


def _value(value: Any) -> struct_pb2.Value:
    if isinstance(value, bool):
        return struct_pb2.Value(bool_value=value)
    if isinstance(value, (int, float)):
        return struct_pb2.Value(number_value=float(value))
    return struct_pb2.Value(string_value=str(value))


def _summary(tag: str, **content: Any) -> Summary:
    data = plugin_data_pb2.HParamsPluginData(version=metadata.PLUGIN_DATA_VERSION, **content)
    plugin = SummaryMetadata.PluginData(
        plugin_name=metadata.PLUGIN_NAME, content=data.SerializeToString()
    )
    return Summary(value=[Summary.Value(tag=tag, metadata=SummaryMetadata(plugin_data=plugin))])


def _replace_files(run: RunDir, files: dict[str, list[Summary]]) -> None:
    """Write one event file per folder (``""`` is tb/ itself) locally, then put each where the
    run keeps its TensorBoard files, removing the hparams files written before."""
    with tempfile.TemporaryDirectory(prefix="ganorch-hparams-") as local:
        for folder, summaries in files.items():
            writer = FileWriter(str(Path(local, folder)), filename_suffix=SUFFIX)
            for summary in summaries:
                writer.add_summary(summary)
            writer.close()
        for folder in files:
            target = run.path("tb", folder) if folder else run.path("tb")
            run.fs.create_dir(target, recursive=True)
            for old in run.fs.get_file_info(pafs.FileSelector(target)):
                if old.type == pafs.FileType.File and old.base_name.endswith(SUFFIX):
                    run.fs.delete_file(old.path)
            for new in Path(local, folder).glob(f"*{SUFFIX}"):
                pafs.copy_files(str(new), f"{target}/{new.name}", destination_filesystem=run.fs)
