"""The scale-out topology on this machine (docs/scaling.md), for tests/test_scale_out.py:

* ``Nginx``       the load balancer: ``deploy/nginx/bakame.conf`` itself, its upstream lines
                  pointed at local Rasa ports, run unprivileged with its own prefix, config
                  and logs in a temp dir on a free 127.0.0.1 port (no system service);
* ``ScaleStack``  one action server and N production Rasa processes (``endpoints.prod.yml``,
                  ``credentials.prod.yml``, SANIC_WORKERS=1, each its OWN event spool) sharing
                  a private Redis and PostgreSQL, behind ``Nginx``;
* ``MathOracle``  the answer to a question the math tutor asked (from actions/content/math.yml):
                  the simulated learners answer right, so a reply meant for someone else shows;
* ``ResourceMeter`` CPU seconds and resident memory of every tier's processes (/proc).
"""
from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from bench.stack import children_of, memory_of
from bench.sysinfo import CLK_TCK, _proc_jiffies
from infra.settings import production_env
from tests.services import LocalPostgres, RedisServer, free_port
from tests.stack import ROOT, Stack, stack_env
from tests.test_production_stack import PRODUCTION_SECRETS, RasaServer

NGINX_CONF = ROOT / "deploy" / "nginx" / "bakame.conf"
PUBLIC_BASE_URL = "https://bakame-scale.invalid"  # what Twilio would call; signatures are over it
UPSTREAM_LINE = re.compile(r"^(\s*server\s+)\S+:\d+(.*)$", re.M)
LOG_UPSTREAM = re.compile(r'"(\w+) (\S+)" (\d+) \S+ upstream=(.*?) upstream_status=')


# --------------------------------------------------------------------------- nginx
def nginx_binary() -> str:
    """nginx from the Debian package; installed here when missing and we may (CI runs as root)."""
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if not found and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-qq", "nginx"], check=False, env=env, timeout=600)
        found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if not found:
        pytest.fail("nginx is not installed (apt-get install nginx)")
    return found


def local_site(conf: str, listen_port: int, upstream_ports: List[int], logdir: Path) -> str:
    """``bakame.conf`` with its upstream servers, listen port and log directory made local."""
    servers = UPSTREAM_LINE.findall(conf)
    assert servers, "no upstream server lines in deploy/nginx/bakame.conf"
    head, options = servers[0]
    block = "".join(f"{head}127.0.0.1:{port}{options}\n" for port in upstream_ports)
    first = UPSTREAM_LINE.search(conf)
    without = UPSTREAM_LINE.sub("", conf)
    # every server line removed, the local ones put where the first one was
    site = without[:first.start()] + block + without[first.start():].lstrip("\n")
    site = re.sub(r"^(\s*)listen\s+80;", rf"\1listen 127.0.0.1:{listen_port};", site, flags=re.M)
    return site.replace("/var/log/nginx/", f"{logdir}/")


class Nginx:
    """The repository's nginx site on a free port, as an unprivileged process."""

    def __init__(self, upstream_ports: List[int]) -> None:
        self.binary = nginx_binary()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="bakame-nginx-"))
        self.upstream_ports = list(upstream_ports)
        self.process: Optional[subprocess.Popen] = None
        self._user = self._unprivileged()

    @staticmethod
    def _unprivileged() -> Optional[Tuple[int, int]]:
        if os.geteuid() != 0:
            return None
        entry = pwd.getpwnam("nobody")
        return entry.pw_uid, entry.pw_gid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def access_log(self) -> Path:
        return self.dir / "access.log"

    def write_config(self) -> Path:
        site = local_site(NGINX_CONF.read_text(), self.port, self.upstream_ports, self.dir)
        (self.dir / "bakame.conf").write_text(site)
        temp = "".join(f"    {kind}_temp_path {self.dir}/{kind};\n"
                       for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        main = self.dir / "nginx.conf"
        main.write_text(f"worker_processes 1;\npid {self.dir}/nginx.pid;\nerror_log {self.dir}/error.log warn;\n"
                        f"events {{ worker_connections 1024; }}\n"
                        f"http {{\n{temp}    include {self.dir}/bakame.conf;\n}}\n")
        if self._user:
            for path in [self.dir, *self.dir.iterdir()]:
                os.chown(path, *self._user)
        return main

    def start(self) -> "Nginx":
        main = self.write_config()
        user = self._user

        def demote():
            if user:
                os.setgid(user[1])
                os.setuid(user[0])

        args = [self.binary, "-p", str(self.dir), "-c", str(main), "-e", str(self.dir / "error.log")]
        check = subprocess.run([*args, "-t"], capture_output=True, text=True, preexec_fn=demote, timeout=60)
        assert check.returncode == 0, check.stderr
        self.process = subprocess.Popen([*args, "-g", "daemon off;"], preexec_fn=demote,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import requests

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (self.dir / "error.log").read_text()
            try:
                if requests.get(f"{self.url}/lb-health", timeout=2).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        pytest.fail(f"nginx not ready: {(self.dir / 'error.log').read_text()[-2000:]}")

    def log_lines(self) -> List[Tuple[str, str, int, List[str]]]:
        """(method, path, status, upstream addresses tried) of every proxied request so far."""
        out = []
        if not self.access_log.exists():
            return out
        for line in self.access_log.read_text().splitlines():
            match = LOG_UPSTREAM.search(line)
            if match and match.group(4) != "-":
                tried = re.findall(r"[\w.\-]+:\d+", match.group(4))  # "a:1, b:2" when nginx moved on
                out.append((match.group(1), match.group(2), int(match.group(3)), tried))
        return out

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------- the stack
class ScaleStack:
    """An action server and ``processes`` Rasa processes behind nginx, one Redis, one PostgreSQL."""

    def __init__(self, workdir: Path, redis_server: RedisServer, pg: LocalPostgres, processes: int = 3,
                 **extra_env: str) -> None:
        self.workdir, self.redis, self.pg = workdir, redis_server, pg
        base = stack_env(workdir, REDIS_URL=redis_server.url, DATABASE_URL=pg.url, PROGRESS_DB_URL=pg.url,
                         SANIC_WORKERS="1", PUBLIC_BASE_URL=PUBLIC_BASE_URL, API_TRUSTED_PROXIES="1",
                         **PRODUCTION_SECRETS, **extra_env)
        self.actions = Stack(workdir=workdir, env=base)
        base["ACTION_ENDPOINT_URL"] = f"http://127.0.0.1:{self.actions.actions_port}/webhook"
        self.env = {**base, **production_env(base)}
        self.rasa = [self._rasa(str(n)) for n in range(1, processes + 1)]
        self.nginx = Nginx([server.port for server in self.rasa])

    def _rasa(self, name: str) -> RasaServer:
        spool = self.workdir / f"spool-{name}" / "events.sqlite"  # each process its own spool file
        return RasaServer(name, self.workdir, {**self.env, "EVENT_SPOOL_PATH": str(spool)})

    def start(self) -> "ScaleStack":
        self.actions.start_actions()
        for server in self.rasa:  # they load the model side by side
            server.start()
        for server in self.rasa:
            server.wait_ready()
        self.nginx.start()
        return self

    def by_address(self, address: str) -> Optional[RasaServer]:
        return next((s for s in self.rasa if address.endswith(f":{s.port}")), None)

    def stop(self) -> None:
        self.nginx.remove()
        for server in self.rasa:
            server.stop()
        self.actions.stop_actions()

    def tiers(self) -> Dict[str, List[int]]:
        """Main process ids of each tier (their children are counted with them)."""
        return {
            "rasa": [s.process.pid for s in self.rasa if s.process and s.process.poll() is None],
            "actions": [self.actions.actions.pid] if self.actions.actions else [],
            "redis": [self.redis.process.pid] if self.redis.process else [],
            "postgres": [postmaster_pid(self.pg)],
            "nginx": [self.nginx.process.pid] if self.nginx.process else [],
        }


def postmaster_pid(pg: LocalPostgres) -> int:
    return int((Path(pg.data) / "postmaster.pid").read_text().split()[0])


# --------------------------------------------------------------------------- measuring
class ResourceMeter:
    """CPU seconds each tier used between start() and stop() (processes and their children,
    from /proc), and the tiers' resident memory at stop()."""

    def __init__(self, tiers: Dict[str, List[int]]) -> None:
        self.tiers = tiers
        self._start: Dict[str, int] = {}
        self._t0 = 0.0

    def _jiffies(self) -> Dict[str, int]:
        return {tier: sum(_proc_jiffies(p) for pid in pids for p in [pid, *children_of(pid)])
                for tier, pids in self.tiers.items()}

    def start(self) -> "ResourceMeter":
        self._t0, self._start = time.monotonic(), self._jiffies()
        return self

    def stop(self) -> Dict[str, Dict[str, float]]:
        elapsed, now = time.monotonic() - self._t0, self._jiffies()
        out = {}
        for tier, pids in self.tiers.items():
            rss = sum(memory_of(p)["rss_mib"] or 0 for pid in pids for p in [pid, *children_of(pid)])
            out[tier] = {"cpu_s": round((now[tier] - self._start[tier]) / CLK_TCK, 2), "rss_mib": round(rss, 1),
                         "processes": len(pids)}
        out["_elapsed_s"] = {"value": round(elapsed, 2)}
        return out


# --------------------------------------------------------------------------- math answers
class MathOracle:
    """The question the tutor asked last in a reply, and its answer (what a learner who
    knows their sums would say)."""

    def __init__(self) -> None:
        from actions.tutoring.math import MathTutor

        self.tutor = MathTutor()
        self.patterns = {lang: [(self._pattern(t[lang]["q"]), tid) for tid, t in self.tutor.templates.items()]
                         for lang in ("en", "rw")}

    @staticmethod
    def _pattern(question: str) -> "re.Pattern":
        seen: List[str] = []

        def group(match: "re.Match") -> str:
            name = match.group(1)
            if name in seen:
                return f"(?P={name})"
            seen.append(name)
            return rf"(?P<{name}>\d+)"

        return re.compile(re.sub(r"\\\{(\w+)\\\}", group, re.escape(question)))

    def last_question(self, reply: str, lang: str) -> Optional[Tuple[str, int]]:
        """(question, answer) of the last question in ``reply``; None when it asks none."""
        best = None
        for pattern, tid in self.patterns[lang]:
            for match in pattern.finditer(reply):
                template, level = self.tutor.templates[tid], self.tutor.level_of[tid]
                drawn = {n: int(match.group(n)) for n in (template.get("vars") or {})}
                problem = self.tutor._instance(template, level, drawn)
                if problem and self.tutor.render(problem, lang)["q"] == match.group(0):
                    if best is None or match.end() > best[0]:
                        best = (match.end(), match.group(0), problem["answer"])
        return (best[1], best[2]) if best else None
