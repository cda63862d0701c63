"""Batches on a real Dask cluster on 127.0.0.1: a `dask scheduler` and two `dask worker` processes.

Each task sleeps DOUBLEDIP_BATCH_TEST_SLEEP seconds (the test hook of doubledip.batch.tasks)
so that tasks are still in flight when a worker is killed.  The worker-kill test is last: it
leaves one worker.
"""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from doubledip import cli, io
from doubledip.batch import read_summary, submit_batch
from doubledip.batch.tasks import TEST_SLEEP_ENV
from doubledip.simulate import simulate

distributed = pytest.importorskip("distributed")

HOST = "127.0.0.1"
SLEEP = 1.0
FAST = {"recipe": "20*ER", "starts": 2}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited early with code {proc.returncode}")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listening on {HOST}:{port} after {timeout} s")


def _stop(proc) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """``(scheduler address, {worker address: Popen})``; every process is stopped at the end."""
    logs = tmp_path_factory.mktemp("dask-logs")
    env = {**os.environ, TEST_SLEEP_ENV: str(SLEEP), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    procs = []

    def start(name, args):
        log = open(logs / f"{name}.log", "w")
        proc = subprocess.Popen([sys.executable, "-m", "dask", *args], stdout=log, stderr=subprocess.STDOUT,
                                env=env, cwd=logs)
        procs.append(proc)
        return proc

    try:
        port = _free_port()
        scheduler = start("scheduler", ["scheduler", "--host", HOST, "--port", str(port), "--no-dashboard"])
        _wait_port(port, scheduler)
        address = f"tcp://{HOST}:{port}"
        workers = {}
        for i in range(2):
            wport = _free_port()
            proc = start(f"worker{i}", ["worker", address, "--nthreads", "1", "--no-nanny", "--host", HOST,
                                        "--worker-port", str(wport), "--no-dashboard", "--death-timeout", "60"])
            workers[f"tcp://{HOST}:{wport}"] = proc
        with distributed.Client(address, timeout=10) as client:
            client.wait_for_workers(2, timeout=60)
        yield address, workers
    finally:
        for proc in reversed(procs):
            _stop(proc)


@pytest.fixture
def client(cluster):
    with distributed.Client(cluster[0], timeout=10) as c:
        yield c


def _inputs(folder, count, bad=()):
    folder.mkdir()
    for i in range(count):
        io.write_measurement(folder / f"p{i}.npz", simulate("crystal2d", 8, seed=i))
    for name in bad:
        (folder / name).write_text("not a pattern")
    return folder


def test_cli_on_scheduler_reports_a_bad_file_and_does_the_rest(cluster, tmp_path, capsys):
    data = _inputs(tmp_path / "in", 2, bad=["broken.npz"])
    out = tmp_path / "out"
    code = cli.main(["batch", str(data), "-o", str(out), "--method", "er", "--set", "er.recipe='20*ER'",
                     "--starts", "2", "--scheduler", cluster[0]])
    captured = capsys.readouterr()
    assert code == 1, captured.err
    rows = {r["name"]: r for r in read_summary(out / "summary.csv")}
    assert rows["broken"]["status"] == "failed"
    assert rows["broken"]["error"].startswith(str(data / "broken.npz"))
    for name in ("p0", "p1"):
        assert rows[name]["status"] == "ok" and rows[name]["worker"] in cluster[1]
        assert 0 <= float(rows[name]["r_factor"]) < 1
        io.read_result(out / f"{name}.npz")
        assert (out / f"{name}.png").is_file()
    assert not (out / "broken.npz").exists()
    assert "[3/3]" in captured.err and "failed" in (out / "summary.md").read_text()


def test_spread_starts_over_workers(client, tmp_path):
    data = _inputs(tmp_path / "in", 1)
    with submit_batch([data], tmp_path / "out", method="er", options=FAST, starts=3, spread_starts=True, seed=7,
                      figures=False, client=client) as batch:
        rows = batch.results(timeout=120)
    assert [r.status for r in rows] == ["ok"]
    result = io.read_result(rows[0].output)
    spread = result.config["batch_spread"]
    values = [s["value"] for s in spread["starts"]]
    assert len(values) == 3 and spread["chosen"] == values.index(min(values))
    assert spread["starts"][0]["seed"] == 7 and len({s["seed"] for s in spread["starts"]}) == 3
    assert rows[0].worker and set(rows[0].worker.split(";")) <= set(client.scheduler_info()["workers"])
    assert not (tmp_path / "out" / ".batch").exists()


def _result_workers(out) -> set:
    return {io.read_result(p).config["batch"]["worker"] for p in out.glob("p*.npz")}


def test_killed_worker_tasks_are_rescheduled(cluster, client, tmp_path):
    address, workers = cluster
    data = _inputs(tmp_path / "in", 6)
    out = tmp_path / "out"
    victim = next(iter(workers))
    with submit_batch([data], out, method="er", options=FAST, figures=False, client=client) as batch:
        deadline = time.monotonic() + 60
        while not (victim in _result_workers(out) and client.processing(workers=[victim]).get(victim)):
            assert time.monotonic() < deadline, "the victim did not finish one task and start another in 60 s"
            time.sleep(0.05)
        workers[victim].send_signal(signal.SIGKILL)
        workers[victim].wait(10)
        rows = batch.results(timeout=120)
    assert workers[victim].returncode == -signal.SIGKILL
    assert [r.status for r in rows] == ["ok"] * 6, [r.error for r in rows]
    for row in rows:
        io.read_result(row.output)
    done_by = [r.worker for r in rows]
    assert victim in done_by and len(set(done_by)) == 2  # mid-batch: both workers finished some
    assert [r["status"] for r in read_summary(out / "summary.csv")] == ["ok"] * 6
