"""concurrent.futures on the cluster: `from pimpi.futures import ProcessPoolExecutor` is the one-line change."""

from concurrent.futures import (ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION, CancelledError, Executor,
                                Future, TimeoutError, as_completed, wait)

from pimpi.futures.executor import ClusterExecutor, ProcessPoolExecutor
from pimpi.futures.failures import Failure, MapError

__all__ = ["ClusterExecutor", "ProcessPoolExecutor", "MapError", "Failure", "as_completed", "wait",
           "Future", "Executor", "CancelledError", "TimeoutError", "ALL_COMPLETED", "FIRST_COMPLETED",
           "FIRST_EXCEPTION"]
