"""Batch reconstruction without a cluster: inputs and names, tasks run as plain calls, the start
selection rule, the summary, and the CLI's one-line errors for bad input."""

import math
import os
import socket

import numpy as np
import pytest

from doubledip import cli, io
from doubledip.batch import (
    BatchRow,
    best_start,
    find_inputs,
    free_loss,
    gather_starts,
    make_settings,
    plan_jobs,
    read_summary,
    run_job,
    run_start,
    selection_value,
    start_seed,
    submit_batch,
    write_summary,
)
from doubledip.errors import ConfigError, DataError
from doubledip.result import Result
from doubledip.simulate import simulate

FAST = {"recipe": "20*ER"}


def _pattern(path, seed):
    io.write_measurement(path, simulate("crystal2d", 8, seed=seed))
    return path


def _settings(**kw):
    return make_settings("er", dict(FAST), **{"starts": 2, **kw})


@pytest.fixture
def doubledip(capsys):
    def run(*argv):
        code = cli.main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


# --------------------------------------------------------------------------- inputs and names


def test_find_inputs_folders_files_and_exclusions(tmp_path):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    for name in ("b.npz", "a.npy", "notes.txt", ".hidden.npz", "sub/c.h5"):
        (data / name).write_bytes(b"x")
    out = data / "out"
    out.mkdir()
    (out / "a.npz").write_bytes(b"x")  # a result of an earlier run, never an input
    flat = find_inputs([data], exclude=out)
    assert [os.path.basename(p) for p in flat] == ["a.npy", "b.npz"]
    deep = find_inputs([data], recursive=True, exclude=out)
    assert [os.path.basename(p) for p in deep] == ["a.npy", "b.npz", "c.h5"]
    # files are taken as given (a bad one fails in its task); duplicates are dropped
    given = find_inputs([data / "notes.txt", data / "b.npz", data])
    assert [os.path.basename(p) for p in given] == ["notes.txt", "b.npz", "a.npy"]
    with pytest.raises(DataError, match="no such file"):
        find_inputs([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no pattern files found.*--recursive"):
        find_inputs([tmp_path / "empty"])


def test_names_are_unique_and_do_not_depend_on_order(tmp_path):
    specs = [str(tmp_path / p) for p in ("a/p1.npz", "b/p1.npz", "c/p2.npz", "c/p2.h5", "c/p3.npz")]
    jobs = plan_jobs(specs, tmp_path / "out")
    names = {os.path.relpath(j.input, tmp_path): j.name for j in jobs}
    assert names == {"a/p1.npz": "p1-a", "b/p1.npz": "p1-b", "c/p2.npz": "p2-npz", "c/p2.h5": "p2-h5",
                     "c/p3.npz": "p3"}
    assert all(j.output == str((tmp_path / "out" / f"{j.name}.npz").resolve()) for j in jobs)
    assert all(j.figure.endswith(f"{j.name}.png") for j in jobs)
    again = {j.input: j.name for j in plan_jobs(specs[::-1], tmp_path / "out", figures=False)}
    assert again == {j.input: j.name for j in jobs}
    assert all(j.figure is None for j in plan_jobs(specs, tmp_path / "out", figures=False))


# --------------------------------------------------------------------------- tasks as plain calls


def test_run_job_writes_once_and_reports_metrics(tmp_path):
    _pattern(tmp_path / "p.npz", 1)
    job = plan_jobs([str(tmp_path / "p.npz")], tmp_path / "out")[0]
    (tmp_path / "out").mkdir()
    settings = _settings()
    row = BatchRow.from_dict(run_job(job, settings))
    assert row.status == "ok" and row.error == ""
    assert 0 <= row.r_factor < 1 and 0 <= row.amplitude_error < 1 and math.isfinite(row.free_loss)
    assert row.method == "er" and row.seed == 0 and row.starts == 2
    result = io.read_result(job.output)
    assert result.config["batch"]["r_factor"] == pytest.approx(row.r_factor)
    assert result.config["starts"] == 2 and os.path.isfile(job.figure)
    stamp = os.stat(job.output).st_mtime_ns
    again = BatchRow.from_dict(run_job(job, settings))  # idempotent: read back, not recomputed
    assert os.stat(job.output).st_mtime_ns == stamp
    assert again.to_dict() == row.to_dict()
    os.remove(job.figure)  # killed between the result and its figure: only the figure is made
    run_job(job, settings)
    assert os.path.isfile(job.figure) and os.stat(job.output).st_mtime_ns == stamp


def test_bad_input_gives_a_failed_row_not_an_exception(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_text("not a pattern")
    job = plan_jobs([str(bad)], tmp_path / "out")[0]
    row = BatchRow.from_dict(run_job(job, _settings()))
    assert row.status == "failed" and row.error.startswith(str(bad)) and "\n" not in row.error
    assert not os.path.exists(job.output)


def test_spread_start_zero_is_the_single_run_and_gather_keeps_the_best(tmp_path):
    _pattern(tmp_path / "p.npz", 2)
    (tmp_path / "single").mkdir()
    (tmp_path / "spread").mkdir()
    single = plan_jobs([str(tmp_path / "p.npz")], tmp_path / "single", figures=False)[0]
    run_job(single, make_settings("er", dict(FAST), starts=1, seed=5))
    settings = make_settings("er", dict(FAST), starts=3, spread_starts=True, seed=5)
    assert settings.spread == 3 and settings.starts_option == "starts"
    job = plan_jobs([str(tmp_path / "p.npz")], tmp_path / "spread", figures=False)[0]
    starts = [run_start(job, settings, k) for k in range(3)]
    assert [s["seed"] for s in starts] == [start_seed(5, k) for k in range(3)]
    assert starts[0]["seed"] == 5 and len({s["seed"] for s in starts}) == 3
    start0 = io.read_result(starts[0]["path"])
    np.testing.assert_array_equal(start0.object, io.read_result(single.output).object)
    row = BatchRow.from_dict(gather_starts(job, settings, *starts))
    assert row.status == "ok", row.error
    result = io.read_result(job.output)
    spread = result.config["batch_spread"]
    values = [s["value"] for s in starts]
    assert spread["chosen"] == int(np.argmin(values))
    assert [s["seed"] for s in spread["starts"]] == [s["seed"] for s in starts]
    assert result.seed == starts[spread["chosen"]]["seed"]
    assert not job.work_dir.exists() and not job.work_dir.parent.exists()


def test_spread_bad_input_fails_with_the_message(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_text("x")
    settings = make_settings("er", dict(FAST), starts=2, spread_starts=True)
    job = plan_jobs([str(bad)], tmp_path, figures=False)[0]
    row = BatchRow.from_dict(gather_starts(job, settings, *[run_start(job, settings, k) for k in range(2)]))
    assert row.status == "failed" and str(bad) in row.error and "all 2 starts failed" in row.error


# --------------------------------------------------------------------------- selection rule


def _fake(history, config=None):
    return Result(np.zeros((4, 4), np.complex64), np.zeros((4, 4), bool), history, config or {})


def test_selection_reads_what_the_classical_solver_ranked_by(tmp_path):
    from doubledip.config import make_options
    from doubledip.methods import get_method

    method = get_method("er")
    result = method.solve(simulate("crystal2d", 8, seed=3), make_options(method.options_cls, {**FAST, "starts": 3}),
                          seed=0, device="cpu")
    finals = result.history["final_free_loss_starts"]
    assert selection_value(result) == ("final_free_loss_starts", pytest.approx(finals.min()))
    assert free_loss(result) == pytest.approx(finals.min())
    fourier = method.solve(simulate("crystal2d", 8, seed=3),
                           make_options(method.options_cls, {**FAST, "starts": 3, "rank_by": "fourier"}),
                           seed=0, device="cpu")
    assert selection_value(fourier) == ("final_loss_starts", pytest.approx(fourier.history["final_loss_starts"].min()))


def test_selection_of_ddip_and_generic_results():
    ddip = _fake({"loss": [3.0, 2.0], "start_free_loss": [0.5, 0.2]}, {"chosen_start": 1})
    assert selection_value(ddip) == ("start_free_loss", 0.2) and free_loss(ddip) == 0.2
    no_free = _fake({"loss": [3.0, 2.0], "start_free_loss": [math.nan]}, {"chosen_start": 0})
    assert selection_value(no_free) == ("loss", 2.0) and math.isnan(free_loss(no_free))
    generic = _fake({"loss": [1.0], "free_loss": [0.4, 0.3, math.nan]})
    assert selection_value(generic) == ("free_loss", 0.3)


def test_best_start_prefers_free_values_then_falls_back():
    assert best_start([("free_loss", 0.3), ("free_loss", 0.1), ("free_loss", 0.1)]) == 1
    assert best_start([("loss", 0.01), ("free_loss", 0.5), ("free_loss", math.nan)]) == 1
    assert best_start([("loss", 0.2), ("loss", 0.1)]) == 1
    assert best_start([("failed_start_free_loss", 0.01), ("start_free_loss", 0.3), ("loss", 0.001)]) == 1
    assert best_start([("loss", 0.001), ("failed_start_free_loss", 0.3)]) == 1
    with pytest.raises(ValueError):
        best_start([])


# --------------------------------------------------------------------------- summary and API without a cluster


def test_summary_round_trip(tmp_path):
    rows = [BatchRow("a.npz", "a", "out/a.npz", "ok", "er", 0, 2, 0.1, 0.2, 0.3, 1.5, "tcp://w:1"),
            BatchRow("b.npz", "b", "out/b.npz", "failed", "er", 0, 2, error="b.npz: broken | bad; fix it")]
    csv_path, md_path = write_summary(tmp_path, rows)
    table = read_summary(csv_path)
    assert [r["status"] for r in table] == ["ok", "failed"]
    assert float(table[0]["r_factor"]) == pytest.approx(0.1) and table[1]["r_factor"] == ""
    assert table[1]["error"] == "b.npz: broken | bad; fix it"
    text = md_path.read_text()
    assert "2 inputs: 1 ok, 1 failed" in text and "broken \\| bad" in text


def test_finished_batch_is_skipped_without_starting_a_cluster(tmp_path):
    for i in range(2):
        _pattern(tmp_path / f"p{i}.npz", i)
    settings = _settings()
    jobs = plan_jobs(find_inputs([tmp_path], exclude=tmp_path / "out"), tmp_path / "out", figures=False)
    (tmp_path / "out").mkdir()
    done = [BatchRow.from_dict(run_job(j, settings)) for j in jobs]
    with submit_batch([tmp_path], tmp_path / "out", method="er", options=FAST, starts=2, figures=False) as batch:
        assert batch.client is None and batch.futures == []
        rows = batch.results()
    assert [r.status for r in rows] == ["skipped", "skipped"]
    assert [r.r_factor for r in rows] == [r.r_factor for r in done]
    assert [r["status"] for r in read_summary(tmp_path / "out" / "summary.csv")] == ["skipped", "skipped"]
    with submit_batch([tmp_path], tmp_path / "out", method="hio", options=FAST, figures=False) as other:
        assert other.skipped_other_method == ["p0", "p1"] and other.client is None


def test_make_settings_checks_everything_up_front():
    with pytest.raises(ConfigError, match="unknown method 'nope'.*known methods"):
        make_settings("nope")
    with pytest.raises(ConfigError, match="unknown option"):
        make_settings("er", {"bogus": 1})
    with pytest.raises(ConfigError, match="at least 1"):
        make_settings("er", starts=0)
    with pytest.raises(ConfigError, match="device"):
        make_settings("er", device="tpu")
    s = make_settings("er", {"starts": 4}, spread_starts=True)
    assert (s.spread, s.starts, s.options["starts"]) == (4, 4, 4)


# --------------------------------------------------------------------------- CLI errors


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("case", ["no-inputs", "outdir-file", "unknown-method", "unknown-option", "missing-input",
                                  "unreachable"])
def test_cli_bad_input_is_one_line_rc2(tmp_path, doubledip, case):
    (tmp_path / "empty").mkdir()
    _pattern(tmp_path / "p.npz", 0)
    (tmp_path / "file").write_text("x")
    args = {
        "no-inputs": [tmp_path / "empty", "-o", tmp_path / "out"],
        "outdir-file": [tmp_path / "p.npz", "-o", tmp_path / "file"],
        "unknown-method": [tmp_path / "p.npz", "-o", tmp_path / "out", "--method", "nope"],
        "unknown-option": [tmp_path / "p.npz", "-o", tmp_path / "out", "--method", "er", "--set", "er.bogus=1"],
        "missing-input": [tmp_path / "missing.npz", "-o", tmp_path / "out"],
        "unreachable": [tmp_path / "p.npz", "-o", tmp_path / "out", "--scheduler", f"tcp://127.0.0.1:{_free_port()}",
                        "--connect-timeout", "1"],
    }[case]
    expected = {"no-inputs": "no pattern files found", "outdir-file": "is a file, not a folder",
                "unknown-method": "known methods are", "unknown-option": "known options are",
                "missing-input": "no such file", "unreachable": "cannot reach the Dask scheduler"}[case]
    code, out, err = doubledip("batch", *args, "--no-figures")
    assert code == 2
    assert err.startswith("doubledip: error:") and expected in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()
