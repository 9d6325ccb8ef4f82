"""Running the independent tasks of a verification: in this process, or on a Dask cluster.

One loop serves both (:func:`run_tasks`): tasks are submitted in order, at most
:data:`IN_FLIGHT_PER_WORKER` per worker at a time, each carrying the best values found so far (so a task
submitted late prunes with what earlier tasks found); results are taken as they complete. In this process
"submitting" runs the task at once. With Dask (``dask.distributed``) the graph is scattered to every worker
once and each task is a ``client.submit`` of :func:`~mpc2nn.verify._bab.run_task`: a :class:`LocalCluster`
of ``workers`` single-threaded processes when no scheduler is given, else the cluster behind
``scheduler`` (an address such as ``"tcp://10.0.0.5:8786"``, or a ``distributed.Client``), with the same code.
"""

from __future__ import annotations

import collections
from collections.abc import Callable

import numpy as np

from .._checks import require
from ..exceptions import ProblemDefinitionError
from ._bab import Task, TaskOutcome, run_task

__all__ = ["run_tasks", "IN_FLIGHT_PER_WORKER"]

#: Tasks kept queued per worker: two keeps every worker busy while the driver updates the best values,
#: and leaves the rest to be sent with the newer (larger) best values, which prune more.
IN_FLIGHT_PER_WORKER = 2


class _Done:
    """A finished task in this process (the stand-in of a Dask future)."""

    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value


def run_tasks(graph, tasks: list[Task], best: np.ndarray, *, scheduler=None, workers: int = 1,
              time_left: Callable[[], float] | None = None,
              on_result: Callable[[TaskOutcome], None] | None = None) -> tuple[list[TaskOutcome], int]:
    """Run every task; returns the outcomes (in task order) and the number of workers used.

    Parameters
    ----------
    graph : ReluGraph
        The network (sent to each worker once).
    tasks : list of Task
        In the order to start them (most promising first).
    best : ndarray, shape (2,)
        Best values known per group; updated in place as results arrive and sent with each new task.
    scheduler : str or distributed.Client, optional
        A Dask scheduler address or client; ``None`` with ``workers > 1`` starts a local cluster.
    workers : int
        Workers of the local cluster (``1`` and no scheduler: run in this process, without Dask).
    time_left : callable, optional
        Seconds left of the budget (each task gets them as its time limit when it is sent).
    on_result : callable, optional
        Called with each outcome as it arrives (progress).

    Returns
    -------
    outcomes : list of TaskOutcome
    n_workers : int
    """
    if scheduler is None and workers <= 1:
        return _loop(graph, tasks, best, _InProcess(), 1, time_left, on_result), 1
    distributed = require("distributed", "verify")
    cluster = None
    own_client = False
    if isinstance(scheduler, distributed.Client):
        client = scheduler
    elif scheduler is not None:
        if not isinstance(scheduler, str):
            raise ProblemDefinitionError(f"scheduler: expected an address such as 'tcp://host:8786' or a "
                                         f"distributed.Client, got {type(scheduler).__name__}")
        client = distributed.Client(scheduler)
        own_client = True
    else:
        cluster = distributed.LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True,
                                           dashboard_address=None, silence_logs=40)
        client = distributed.Client(cluster)
        own_client = True
    try:
        n_workers = max(1, len(client.scheduler_info().get("workers", {})) or int(workers))
        pool = _Dask(client, distributed, graph)
        return _loop(graph, tasks, best, pool, n_workers, time_left, on_result), n_workers
    finally:
        if own_client:
            client.close()
        if cluster is not None:
            cluster.close()


class _InProcess:
    def submit(self, graph, task):
        return _Done(run_task(graph, task))

    def wait_any(self, pending):
        return pending[0]


class _Dask:
    def __init__(self, client, distributed, graph):
        self.client, self.distributed = client, distributed
        self.graph = client.scatter(graph, broadcast=True)

    def submit(self, graph, task):
        return self.client.submit(run_task, self.graph, task, pure=False)

    def wait_any(self, pending):
        done = self.distributed.wait(pending, return_when="FIRST_COMPLETED").done
        return next(iter(done))


def _loop(graph, tasks, best, pool, n_workers: int, time_left, on_result) -> list[TaskOutcome]:
    queue = collections.deque(tasks)
    pending: list = []
    outcomes: dict[int, TaskOutcome] = {}
    limit = max(1, IN_FLIGHT_PER_WORKER * n_workers)
    while queue or pending:
        while queue and len(pending) < limit:
            task = queue.popleft()
            task.best = np.maximum(task.best, best)
            if time_left is not None:
                task.time_limit = max(0.0, float(time_left()))
            pending.append(pool.submit(graph, task))
        fut = pool.wait_any(pending)
        pending.remove(fut)
        out: TaskOutcome = fut.result()
        best[:] = np.maximum(best, out.value)
        outcomes[out.index] = out
        if on_result is not None:
            on_result(out)
    return [outcomes[t.index] for t in tasks]
