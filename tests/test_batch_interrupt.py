"""A `doubledip batch` on its local cluster killed as a whole (SIGKILL to its process group, workers
included) after its first result, then run again: the rest is done, nothing done is redone."""

import os
import signal
import subprocess
import sys
import time

from doubledip import io
from doubledip.batch import read_summary
from doubledip.batch.tasks import TEST_SLEEP_ENV
from doubledip.simulate import simulate

COUNT = 4


def _command(data, out):
    return [sys.executable, "-m", "doubledip.cli", "batch", str(data), "-o", str(out), "--method", "er",
            "--set", "er.recipe='20*ER'", "--starts", "2", "--workers", "1", "--no-figures"]


def test_killed_batch_is_finished_by_running_it_again(tmp_path):
    data = tmp_path / "in"
    data.mkdir()
    for i in range(COUNT):
        io.write_measurement(data / f"p{i}.npz", simulate("crystal2d", 8, seed=i))
    out = tmp_path / "out"
    env = {**os.environ, TEST_SLEEP_ENV: "1.0", "OMP_NUM_THREADS": "1"}
    log = open(tmp_path / "first.log", "w")
    proc = subprocess.Popen(_command(data, out), stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while not list(out.glob("p*.npz")):
            assert proc.poll() is None, (tmp_path / "first.log").read_text()
            assert time.monotonic() < deadline, "no result after 90 s"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the batch and its local workers, all at once
        proc.wait(10)
    first = {p.name: p.stat().st_mtime_ns for p in out.glob("p*.npz")}
    assert 1 <= len(first) < COUNT
    for name in first:
        io.read_result(out / name)

    again = subprocess.run(_command(data, out), capture_output=True, text=True, timeout=120,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert again.returncode == 0, again.stderr
    assert f"{len(first)} already done" in again.stderr
    for i in range(COUNT):
        io.read_result(out / f"p{i}.npz")
    assert {name: (out / name).stat().st_mtime_ns for name in first} == first
    status = {r["name"]: r["status"] for r in read_summary(out / "summary.csv")}
    assert status == {f"p{i}": "skipped" if f"p{i}.npz" in first else "ok" for i in range(COUNT)}
