"""Real ``chatcrm`` processes for crash tests: started as subprocesses, SIGKILLed, started again.

``Process`` runs one ``python -m bot.cli <args>`` with its output in a log file; ``free_port`` finds
a port for ``chatcrm web`` to listen on. ``Stack`` is ``chatcrm web`` and ``chatcrm worker`` on one
database (the platform's settings pointing at a fake), and ``Stack.deliver_with_kill`` posts a
delivery, SIGKILLs the web process (and maybe the worker) a given time later, starts them again
and delivers again until the delivery gets its 200, as a platform does when it got no 2xx. It
notes when each kill came, so a test can tell a message sent twice because it was in flight at a
kill from one sent twice for no reason (``in_flight_at_a_kill``).
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx

from tests.fakes.loopback import LOOPBACK_TLS
from tests.fakes.worker import FAST_WORKER_ENV, SERVER_SECRET, wait_until

ROOT = Path(__file__).resolve().parents[1]
# Kills per scenario and database in the crash tests: 1 keeps ``make test`` short; ``make test-crash``
# sets 10 (20 a scenario over both databases).
CRASH_POINTS = int(os.environ.get("CHATCRM_CRASH_POINTS", "1"))
# A sender records a message as sent within this long after the platform got it (milliseconds; up
# to a second on a loaded machine): a second copy is explained by a kill within this window.
RECORDING_WINDOW = 1.0
# How long a started web process may take to answer /healthz.
STARTUP_TIMEOUT = 60


class Process:
    """A ``chatcrm`` command in a subprocess; its output goes to a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path):
        self.args, self.env, self.log_path = args, env, log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log_path, "a") as log:
            log.write(f"--- start {' '.join(self.args)}\n")
            log.flush()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", *self.args],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        assert self.process is not None and self.process.poll() is None, self.log()
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def ensure_dead(self) -> None:
        """Kill it if it still runs (the end of a test, whatever happened)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text()[-5000:] if self.log_path.exists() else ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ``post(attempt)``: deliver once more (attempt 0 is the first delivery, 1 the first redelivery);
# the HTTP status, or None when the connection broke (the process died under it).
Post = Callable[[int], "int | None"]


class Stack:
    """``chatcrm web`` and ``chatcrm worker`` on ``database_url``, with ``platform_env`` (the platform's
    token, secret and API URL pointing at a fake), and SIGKILLs. Nothing runs until ``start``
    (or ``start_web``/``worker.start``); leaving the ``with`` block kills what still runs."""

    def __init__(self, database_url: str, platform_env: Mapping[str, str], tmp: Path):
        env = {
            **os.environ,
            **SERVER_SECRET,
            **FAST_WORKER_ENV,
            **platform_env,
            "DATABASE_URL": database_url,
            # A dead process's deliveries and rows are taken over within a second or two.
            "CHATCRM_INBOX_LEASE": "1",
            "CHATCRM_INBOX_POLL": "0.2",
            # Rows a killed process was sending are sent again this long after they were claimed.
            # Not shorter: a live process's claim is not renewed while it sends what a request
            # queued, and on a machine at load 10 a web process can stall for 2 s (its rows, taken
            # over as though it had died, were then sent twice with no kill to explain it).
            "CHATCRM_OUTBOX_LEASE": "5",
            "CHATCRM_LOG_LEVEL": "WARNING",
        }
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.web = Process(["web", "--host", "127.0.0.1", "--port", str(port)], env, tmp / "web.log")
        self.worker = Process(["worker"], env, tmp / "worker.log")
        self.kills = 0
        # Kills that came before the delivery's 200 (the rest hit the work after it, or nothing).
        self.before_ack = 0
        # When each kill of either process came (time.time(), the clock the fakes note arrivals on),
        # and the last kill of the web.
        self.kill_times: list[float] = []
        self.web_killed_at = 0.0

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *_exc: object) -> None:
        for process in (self.web, self.worker):
            process.ensure_dead()

    def start(self) -> Stack:
        """Start the worker and the web process (``with stack.start():``); if the web does not come
        up, neither is left running."""
        try:
            self.worker.start()
            self.start_web()
        except BaseException:
            self.__exit__()
            raise
        return self

    def start_web(self) -> None:
        """Start the web process and wait until it answers /healthz."""
        self.web.start()

        def healthy() -> bool:
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1, verify=LOOPBACK_TLS).status_code == 200
            except httpx.HTTPError:
                return False

        # A start takes 2-6 s; on a machine busy with other suites (load 12 on 2 cores) up to 40 s.
        assert wait_until(healthy, timeout=STARTUP_TIMEOUT), self.web.log()

    def logs(self) -> str:
        return self.web.log() + self.worker.log()

    def deliver_with_kill(self, post: Post, delay: float, *, kill_worker: bool, after_ack: bool = False) -> bool:
        """Deliver with ``post``, SIGKILL the web (and the worker with ``kill_worker``) ``delay`` s
        later (``after_ack``: ``delay`` s after the delivery got its answer), start them again and
        deliver again until the delivery gets its 200. Whether the kill came before that 200."""
        answered: list[int | None] = []
        acked = threading.Event()

        def deliver() -> None:
            answered.append(post(0))
            acked.set()

        poster = threading.Thread(target=deliver)
        poster.start()
        if after_ack:
            acked.wait(30)
        time.sleep(delay)
        self.web_killed_at = time.time()
        self.kill_times.append(self.web_killed_at)
        self.web.kill()
        if kill_worker:
            # Noted on its own: the worker dies a little later (after the web was reaped), and
            # what it sent meanwhile was in flight at its own kill.
            self.kill_times.append(time.time())
            self.worker.kill()
        self.kills += 1
        poster.join(20)
        if kill_worker:
            self.worker.start()
        self.start_web()
        if answered == [200]:
            return False
        self.before_ack += 1
        attempts = itertools.count(1)
        assert wait_until(lambda: post(next(attempts)) == 200, timeout=30), self.web.log()
        return True

    def in_flight_at_a_kill(self, arrived: float) -> float | None:
        """For a message that arrived twice, its first copy at ``arrived``: how long after that a
        process was killed (before its sender could record it as sent), or None when no kill
        explains the second copy."""
        after = [at - arrived for at in self.kill_times if -0.05 <= at - arrived <= RECORDING_WINDOW]
        return min(after, default=None)

    def repeats(self, arrivals: Mapping[str, list[float]]) -> tuple[list[str], list[str]]:
        """The messages that arrived more than once (``arrivals``: each message's arrival times), as
        "<message> x<copies>": those in flight at a kill (each copy but the last followed by a kill,
        with how long after it came), and those no kill explains."""
        in_flight, unexplained = [], []
        for message, times in sorted(arrivals.items()):
            if len(times) < 2:
                continue
            lags = [self.in_flight_at_a_kill(at) for at in sorted(times)[:-1]]
            if None in lags:
                copies = ", ".join(f"{at - min(times):+.2f}" for at in sorted(times))
                nearest = min(self.kill_times, key=lambda at: abs(at - min(times)), default=None)
                kill = f"; nearest kill at {nearest - min(times):+.2f} s" if nearest is not None else ""
                unexplained.append(f"{message} x{len(times)} (copies at {copies} s{kill})")
            else:
                after = ", ".join(f"{lag * 1000:.0f}" for lag in lags if lag is not None)
                in_flight.append(f"{message} x{len(times)} (killed {after} ms after)")
        return in_flight, unexplained
