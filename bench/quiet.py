"""How much of the shared machine other processes use: the bench's one meter in Python
(bench/tfjs/run.mjs has the browser's, which also counts Chromium's processes as its own).

`others_cores` is the busy CPU time of the whole machine (from /proc/stat) minus this
process's and its children's, over the wall time: near 0 means the bench had the machine to
itself; 1.0 means another process kept one core busy throughout.
"""

import os
import resource
import time
from collections.abc import Callable


def _cpu_s() -> tuple[float, float]:
    """(busy CPU seconds of the whole machine, of this process and its children)."""
    try:
        with open("/proc/stat") as stat:
            user, nice, system, _idle, _wait, irq, softirq = map(int, stat.readline().split()[1:8])
    except OSError:
        return 0.0, 0.0
    machine = (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")
    own = sum(
        usage.ru_utime + usage.ru_stime
        for usage in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    )
    return machine, own


def meter() -> Callable[[], dict]:
    """Starts metering; the returned function gives the wall time and the cores other
    processes kept busy, on average, since then."""
    started, (machine, own) = time.perf_counter(), _cpu_s()

    def read() -> dict:
        wall = time.perf_counter() - started
        machine_now, own_now = _cpu_s()
        others = max((machine_now - machine) - (own_now - own), 0.0) / wall
        return {"wall_s": round(wall, 1), "others_cores": round(others, 2)}

    return read


def wait_for_quiet(threshold: float = 0.3, window_s: float = 2.0, max_wait_s: float = 45.0) -> dict:
    """Wait (at most `max_wait_s`) until other processes use fewer than `threshold` cores."""
    if max_wait_s <= 0:
        return {"waited_s": 0.0, "quiet": None}
    started = time.perf_counter()
    while True:
        others = meter()
        time.sleep(window_s)
        busy = others()["others_cores"]
        waited = time.perf_counter() - started
        if busy < threshold or waited >= max_wait_s:
            return {
                "waited_s": round(waited, 1),
                "quiet": busy < threshold,
                "others_cores_before": busy,
            }
