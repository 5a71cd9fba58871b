"""The machine and how busy it was: CPU, memory, load, and CPU time per process (/proc)."""
from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional

from bench.stack import ROOT, children_of

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def machine() -> Dict[str, object]:
    info: Dict[str, object] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                               "kernel": platform.release()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["mem_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        import rasa
        import rasa_sdk

        info["rasa"], info["rasa_sdk"] = rasa.__version__, rasa_sdk.__version__
    except Exception:  # noqa: BLE001
        pass
    info["loadavg"] = loadavg()
    return info


def git_state() -> Dict[str, object]:
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    return {"commit": git("rev-parse", "--short", "HEAD"), "dirty_files": len(git("status", "--porcelain").splitlines())}


def loadavg() -> List[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def _cpu_total() -> Dict[str, int]:
    """Jiffies of the whole machine: busy and total (first line of /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return {"busy": total - idle, "total": total}


def _proc_jiffies(pid: int) -> int:
    try:
        parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(parts[11]) + int(parts[12])  # utime + stime
    except (OSError, ValueError, IndexError):
        return 0


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def service_pids(redis_port: int = 6379, database: str = "bakame_bench") -> Dict[str, List[int]]:
    """The Redis server on ``redis_port`` and the PostgreSQL processes serving ``database``
    (plus the cluster's WAL writer and checkpointer): shared servers our load keeps busy."""
    out: Dict[str, List[int]] = {"redis": [], "postgres": []}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        cmd = _cmdline(pid)
        if cmd.startswith("redis-server") and f":{redis_port}" in cmd:
            out["redis"].append(pid)
        elif cmd.startswith("postgres: ") and (f" {database} " in cmd or cmd.rstrip().endswith(
                ("walwriter", "checkpointer", "background writer"))):
            out["postgres"].append(pid)
    return out


class CpuMeter:
    """CPU used between :meth:`start` and :meth:`stop`: by the machine, by each of our
    processes (with their Sanic workers), by this load generator, by the Redis and
    PostgreSQL servers (shared; mostly our load) and by everyone else."""

    def __init__(self, pids: Dict[str, int], redis_port: int = 6379, database: str = "bakame_bench") -> None:
        self.pids = dict(pids)
        self.pids["load_generator"] = os.getpid()
        self.redis_port, self.database = redis_port, database
        self._t0 = 0.0
        self._total0: Dict[str, int] = {}
        self._ours0: Dict[str, int] = {}
        self._services0: Dict[int, int] = {}

    def _ours(self) -> Dict[str, int]:
        out = {}
        for name, pid in self.pids.items():
            pids = [pid] + (children_of(pid) if name != "load_generator" else [])
            out[name] = sum(_proc_jiffies(p) for p in pids)
        return out

    def _services(self) -> Dict[str, Dict[int, int]]:
        return {name: {pid: _proc_jiffies(pid) for pid in pids}
                for name, pids in service_pids(self.redis_port, self.database).items()}

    def start(self) -> "CpuMeter":
        self._t0 = time.monotonic()
        self._total0 = _cpu_total()
        self._ours0 = self._ours()
        self._services0 = {pid: j for per in self._services().values() for pid, j in per.items()}
        return self

    def stop(self) -> Dict[str, object]:
        elapsed = max(1e-6, time.monotonic() - self._t0)
        total1, ours1, services1 = _cpu_total(), self._ours(), self._services()
        busy = (total1["busy"] - self._total0["busy"]) / CLK_TCK / elapsed
        per = {name: round((ours1[name] - self._ours0.get(name, 0)) / CLK_TCK / elapsed, 2) for name in ours1}
        services = {name: round(sum(j - self._services0.get(pid, 0) for pid, j in pids.items()) / CLK_TCK / elapsed, 2)
                    for name, pids in services1.items()}
        ours = sum(per.values()) + sum(services.values())
        return {"elapsed_s": round(elapsed, 2), "machine_busy_cores": round(busy, 2), "ours_cores": per,
                "services_cores": services, "others_cores": round(max(0.0, busy - ours), 2), "loadavg": loadavg()}


def cpu_ms_per_turn(cpu: Dict[str, object], turns: int) -> Dict[str, float]:
    """CPU milliseconds each of our processes spent per turn (robust to a busy machine,
    unlike latency): cores x elapsed / turns."""
    if not cpu or not turns:
        return {}
    elapsed = float(cpu.get("elapsed_s") or 0)
    per = cpu.get("ours_cores") or {}
    out = {name: round(float(cores) * elapsed / turns * 1000, 1) for name, cores in per.items()}  # type: ignore[union-attr]
    out["stack"] = round(sum(v for k, v in out.items() if k != "load_generator"), 1)
    for name, cores in (cpu.get("services_cores") or {}).items():  # type: ignore[union-attr]
        out[name] = round(float(cores) * elapsed / turns * 1000, 1)
    return out


def self_peak_mib() -> float:
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def summarise_loads(samples: Iterable[Optional[List[float]]]) -> Dict[str, Optional[float]]:
    ones = [s[0] for s in samples if s]
    if not ones:
        return {"min": None, "mean": None, "max": None}
    return {"min": min(ones), "mean": round(sum(ones) / len(ones), 2), "max": max(ones)}
