"""Where episodes run: worker processes on this machine (the default) or tasks on a Ray cluster.

The episode runner (:mod:`agents.runner`, through which the harness, RegMix, the search and the collector play)
submits one task per episode to the :class:`concurrent.futures.Executor` that :meth:`Backend.executor` opens, and
waits on the futures it returns; the caller alone writes what the tasks return, so the two backends record the
same data.

- ``"process"``: a :class:`~concurrent.futures.ProcessPoolExecutor` of ``workers`` forkserver processes
  (torch and fork do not mix), each with one torch thread (the project's thread policy: one per env process)
  and ending itself when its parent dies.
- ``"ray"`` (``pip install -e ".[ray]"``): each task is a Ray task of one CPU and ``num_gpus`` GPUs (a
  fraction shares a GPU between proxies); Ray sets ``OMP_NUM_THREADS`` to a task's CPUs, so torch there runs one
  thread too. Ray retries a task whose worker died (``max_retries``); its future then holds the retry's result,
  so an episode is never committed twice nor half. With ``address=None`` a local Ray of ``workers`` CPUs is
  started for the run and stopped after it; ``address="auto"`` joins the running cluster (``ray start --head``),
  whose CPUs set the parallelism.

The episode task is :func:`agents.runner.play_job`: each worker makes an env once per set of arguments and reuses
it; on a node that has no prepared cache the first env prepares it under the cache's lock, so a node prepares once
(or shares a cache on a shared filesystem through ``MIXING_GYM_CACHE``).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

BACKENDS = ("process", "ray")
RAY_INSTALL_HINT = 'the ray backend needs Ray: pip install -e ".[ray]" (or pip install "ray>=2.60")'


@dataclass(frozen=True)
class Backend:
    """How the episodes of a command run.

    Args:
        name: ``"process"`` (worker processes on this machine) or ``"ray"`` (Ray tasks).
        workers: processes of the pool, or the CPUs of the local Ray started when ``address`` is ``None``
            (a cluster's parallelism is its CPUs).
        address: the Ray cluster to join (``"auto"``: the one ``ray start`` runs on this node; ``None``: start
            a local one). Ray only.
        num_gpus: GPUs each episode task holds; a fraction lets several proxies share one GPU (0.25: four).
            Ray only: the env must also train on the GPU (``device="cuda"`` in its arguments).
        max_retries: times Ray runs an episode again when its worker process dies.
    """

    name: str = "process"
    workers: int = 1
    address: str | None = None
    num_gpus: float = 0.0
    max_retries: int = 3

    def __post_init__(self):
        if self.name not in BACKENDS:
            raise ValueError(f"Unknown backend {self.name!r}; choose one of {list(BACKENDS)}.")
        if self.workers < 1:
            raise ValueError(f"A backend needs workers >= 1, got {self.workers}.")
        if self.name == "process" and (self.address is not None or self.num_gpus):
            raise ValueError("address and num_gpus are Ray's: pass --backend ray (Backend(name='ray')) to use them.")
        if self.num_gpus < 0 or self.max_retries < 0:
            raise ValueError(f"num_gpus and max_retries must not be negative, got {self.num_gpus} and "
                             f"{self.max_retries}.")

    def executor(self) -> Executor:
        """The executor episode tasks go to; use it as a context manager, which shuts it down."""
        if self.name == "ray":
            return RayExecutor(self)
        context = multiprocessing.get_context("forkserver")  # torch and fork do not mix
        return ProcessPoolExecutor(self.workers, mp_context=context, initializer=_start_worker)


def _start_worker() -> None:
    """Run in each pool worker as it starts: one torch thread (the threads of several workers spin-waiting on shared
    cores slow every step), and an end with the parent (a killed caller cannot close its pool, so its workers end
    themselves instead of finishing their episode and waiting forever as orphans)."""
    import torch

    torch.set_num_threads(1)

    def watch() -> None:
        multiprocessing.connection.wait([multiprocessing.parent_process().sentinel])
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


class RayExecutor(Executor):
    """A :class:`concurrent.futures.Executor` over Ray tasks (see :class:`Backend` for what it does).

    Args:
        backend: the ``"ray"`` backend whose address, CPUs, GPUs and retries it uses.
    """

    def __init__(self, backend: Backend):
        try:
            import ray
        except ImportError as error:
            raise ImportError(f"{RAY_INSTALL_HINT}.") from error
        self._ray = ray
        self._backend = backend
        self._started = not ray.is_initialized()  # a Ray the caller started is the caller's to stop
        if self._started:
            # "local" starts a new Ray even where another runs on this machine (which None would join)
            ray.init(address=backend.address or "local", num_cpus=backend.workers if backend.address is None else None,
                     include_dashboard=False, configure_logging=False)
        self._remotes: dict[Callable, Any] = {}
        self._submitted: list[tuple[Any, Future]] = []  # each task's reference and the future handed out

    @property
    def workers(self) -> int:
        """Episodes that run at once: the CPUs of the Ray this executor runs on."""
        return int(self._ray.cluster_resources().get("CPU", self._backend.workers))

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        if fn not in self._remotes:
            self._remotes[fn] = self._ray.remote(fn).options(
                num_cpus=1, num_gpus=self._backend.num_gpus, max_retries=self._backend.max_retries)
        reference = self._remotes[fn].remote(*args, **kwargs)
        future = reference.future()
        self._submitted.append((reference, future))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Cancel the tasks whose futures were cancelled (all of them with ``cancel_futures`` or without ``wait``),
        wait for the others if ``wait``, then stop the Ray this executor started. A caller that cancels its
        futures on an error (as :class:`~agents.runner.EpisodeRunner` does) so returns without playing them out."""
        waiting = []
        for reference, future in self._submitted:
            if cancel_futures or not wait or future.cancelled():
                self._ray.cancel(reference, force=True)
            else:
                waiting.append(reference)
        if waiting:
            self._ray.wait(waiting, num_returns=len(waiting))
        self._submitted = []
        if self._started:
            self._ray.shutdown()

