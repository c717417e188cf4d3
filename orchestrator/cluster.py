"""Starting or joining Ray: the one place the orchestrator calls ``ray.init``."""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

from orchestrator.errors import SpecError, UserError

LOOPBACK = "127.0.0.1"
# Tune's own console output is replaced by ganorch's progress line and tables.
_QUIET_ENV = {
    "RAY_AIR_NEW_OUTPUT": "0",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
}


def quiet() -> None:
    """Silence Ray's, Tune's and Optuna's banners and Tune's per-trial tracebacks: ganorch
    prints one line per failed trial and the tables keep the error (Tune keeps the trace)."""
    for key, value in _QUIET_ENV.items():
        os.environ.setdefault(key, value)
    logging.getLogger("ray").setLevel(logging.ERROR)
    for name in ("ray.tune", "ray.air"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def given_address(address: str | None) -> str | None:
    """``address``, else ``GANORCH_ADDRESS``, else None (start a local Ray)."""
    return address or os.environ.get("GANORCH_ADDRESS") or None


def probe(address: str | None, timeout_s: float = 5.0) -> None:
    """Fail in seconds when nothing listens at a ``host:port`` or ``ray://host:port`` address.

    ``ray.init`` retries an unreachable GCS for minutes; a TCP connect answers at once. Commands
    call this before their slow preparation (datasets, judges). ``auto`` is left to Ray, which
    fails at once when no cluster was started on this machine.
    """
    address = given_address(address)
    if not address or address in ("auto", "local"):
        return
    host, colon, port = address.split("://", 1)[-1].rpartition(":")
    if not colon or not port.isdigit():
        raise UserError(
            f"cannot reach Ray at {address}: expected auto, host:port or ray://host:port"
        )
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise UserError(
            f"cannot reach Ray at {address}: nothing answers on {host}:{port} ({reason})"
        ) from None


def connect(address: str | None = None, num_cpus: int | None = None) -> None:
    """Join the cluster at ``address`` (or ``GANORCH_ADDRESS``), else start a local Ray.

    Without an address, a new local Ray starts (``address="local"``) rather than Ray's default
    of joining whatever cluster ``ray start`` left on this machine. It runs without a dashboard
    and listens on loopback only (see :func:`start_local`).
    """
    import ray

    quiet()
    if ray.is_initialized():
        return
    address = given_address(address)
    probe(address)
    options = {"logging_level": logging.ERROR, "log_to_driver": False}
    try:
        if address:
            # A Ray that listens on loopback only is reached at its loopback address, which
            # Ray would otherwise swap for this machine's routable one.
            with _loopback_node_ip() if _is_loopback(address) else nullcontext():
                ray.init(address=address, **options)
        else:
            start_local(num_cpus=num_cpus, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = address or "a new local instance"
        raise UserError(f"cannot reach Ray at {where}: {first}") from None
    quiet()  # ray.init resets its loggers' levels


def start_local(**options) -> None:
    """Start a single-machine Ray whose GCS, raylet, object manager, agents and workers listen
    on 127.0.0.1 only: nothing else on the network can reach it.

    On Linux Ray takes the machine's routable address as the node IP (``127.0.0.1`` given as
    ``_node_ip_address`` is replaced by it) and its servers then listen on every interface.
    With clusters switched off (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, Ray's default on macOS
    and Windows) the node IP stays loopback and every server binds it. The switch is Ray's
    constant, read from the environment when Ray is imported; it is set here for this one
    ``ray.init`` and restored, so a later join of a real cluster in this process is unaffected.
    """
    import ray

    with _loopback_node_ip():
        ray.init(address="local", include_dashboard=False, _node_ip_address=LOOPBACK, **options)


@contextmanager
def _loopback_node_ip() -> Iterator[None]:
    """Ray's single-machine mode for the ``ray.init`` inside: loopback stays the node IP."""
    from ray._private import ray_constants

    previous = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = previous


def _is_loopback(address: str) -> bool:
    """Whether a ``host:port`` address names this machine's loopback interface."""
    if "://" in address:
        return False  # Ray Client addresses are connected to as given
    host = address.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def gpu_share(requested: float | str) -> float:
    """A trial's GPUs: ``requested`` itself, or for ``"auto"`` one GPU where a live node of
    the connected Ray has one and none elsewhere (a joined cluster's autoscaler is not asked:
    auto means the GPUs there now)."""
    if requested != "auto":
        return float(requested)
    import ray

    nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    return 1.0 if any(resources.get("GPU", 0.0) >= 1.0 for resources in nodes) else 0.0


def check_trial_fits(cpu: float, gpu: float, *, embedded: bool) -> None:
    """Refuse trials of ``cpu`` CPUs and ``gpu`` GPUs that no node can ever hold: Tune would
    leave them pending forever (``running 0``).

    A Ray that ganorch started itself (``embedded``) never grows. A joined cluster may: when it
    reports what its autoscaler can add (Ray's cluster config), the trials are refused only if
    no node type holds them; without such a report (e.g. Ray's v1 autoscaler) ganorch cannot
    tell, so the sweep starts and its progress line says what the trials wait for.
    """
    import ray

    nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    if any(_holds(resources, cpu, gpu) for resources in nodes):
        return
    if not embedded:
        node_types = _autoscaler_node_types()
        if node_types is None or any(_holds(resources, cpu, gpu) for resources in node_types):
            return
    most_gpu = max((r.get("GPU", 0.0) for r in nodes), default=0.0)
    most_cpu = max((r.get("CPU", 0.0) for r in nodes), default=0.0)
    which = "this machine's Ray" if embedded else "the cluster"
    if most_gpu < gpu:
        raise SpecError(
            "resources.gpu",
            f"{gpu:g} per trial, but no node of {which} has that "
            f"many GPUs (at most {most_gpu:g}) and it cannot add one; lower "
            "resources.gpu or join a cluster with GPUs (--address)",
        )
    raise SpecError(
        "resources.cpu",
        f"{cpu:g} per trial with {gpu:g} GPU, but no node of "
        f"{which} has that (at most {most_cpu:g} CPUs) and it cannot add one; "
        "lower resources.cpu",
    )


def _holds(resources: dict[str, float], cpu: float, gpu: float) -> bool:
    return resources.get("CPU", 0.0) >= cpu and resources.get("GPU", 0.0) >= gpu


def _autoscaler_node_types() -> list[dict[str, float]] | None:
    """The resources of each node type an autoscaler may add (max count above 0), from the
    cluster config it reports to Ray; None when no config is reported."""
    from ray._private.state import state

    config = state.get_cluster_config()
    if config is None:
        return None
    return [dict(group.resources) for group in config.node_group_configs if group.max_count]
