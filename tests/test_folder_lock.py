"""One writer per folder: the ``flock`` helper, then real ``invskin`` processes racing for a folder.

A command that must still be running while another one starts is frozen with SIGSTOP as soon as it
holds its lock (its record is in the lock file), so that the window is deterministic and costs no
CPU; it is then continued, or killed with SIGKILL.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixtures_data import write_dataset, write_plain_folder
from invskin import folder_lock
from invskin.errors import FolderInUse
from invskin.folder_lock import acquire, command_line, hold_folder, holders, lock_path
from invskin.training.checkpoint import load_checkpoint
from invskin.training.distributed import on_main_rank

ENV = dict(os.environ, OMP_NUM_THREADS="1")
HOLD = """
import sys, time
from invskin.folder_lock import acquire
acquire(sys.argv[1], shared=sys.argv[2] == "shared")
print("held", flush=True)
time.sleep(600)
"""


# ----------------------------------------------------------------------------- the helper


def test_lock_file_sits_beside_the_folder_whatever_path_names_it(tmp_path: Path) -> None:
    (tmp_path / "runs" / "x").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "runs" / "x")
    assert lock_path(tmp_path / "runs" / "x") == tmp_path.resolve() / "runs" / ".x.lock"
    assert lock_path(tmp_path / "link") == lock_path(tmp_path / "runs" / "x" / ".." / "x")
    with pytest.raises(ValueError, match="no parent folder"):
        lock_path("/")


def test_exclusive_lock_refuses_any_other_and_names_its_holder(tmp_path: Path) -> None:
    run = tmp_path / "run"
    held = acquire(run)  # a second open file is a second holder, even in one process
    for shared in (False, True):
        with pytest.raises(FolderInUse) as refused:
            acquire(run, shared=shared, hint="Wait for it.")
        message = str(refused.value)
        assert f"{run} is in use by pid {os.getpid()} (`" in message
        assert "exclusive lock" in message and "Wait for it." in message
        assert str(lock_path(run)) in message and time.strftime("%Y-%m-%d") in message
    assert [h.pid for h in holders(run)] == [os.getpid()]
    held.release()
    assert not lock_path(run).exists()  # removed by the last holder
    with hold_folder(run) as again:
        assert again.held
    held.release()  # a second release does nothing


def test_shared_locks_coexist_and_refuse_a_writer(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first, second = acquire(data, shared=True), acquire(data, shared=True)
    assert [h.mode for h in holders(data)] == ["shared", "shared"]
    with pytest.raises(FolderInUse, match="shared lock.*; pid .*shared lock"):
        acquire(data)
    first.release()
    assert lock_path(data).exists()  # the other reader still holds it
    second.release()
    assert not lock_path(data).exists()


def test_records_of_ended_processes_are_not_named(tmp_path: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    record = {"pid": int(gone.stdout), "host": socket.gethostname(), "command": "invskin train",
              "started": "2000-01-01 00:00:00", "mode": "shared"}  # fmt: skip
    lock_path(tmp_path / "d").write_text(json.dumps(record) + "\nnot json\n")
    assert holders(tmp_path / "d") == []
    with hold_folder(tmp_path / "d", shared=True):
        # Alone, the shared holder replaced the old records with its own.
        assert [h.pid for h in holders(tmp_path / "d")] == [os.getpid()]
        with pytest.raises(FolderInUse) as refused:
            acquire(tmp_path / "d")
    assert f"pid {int(gone.stdout)} " not in str(refused.value)


def test_a_lock_file_removed_by_the_leaving_holder_is_not_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that opened the lock file just before its holder removed it locks a file no one
    else will see: it notices and locks the file now at the path."""
    run = tmp_path / "run"
    stale = lock_path(run)
    stale.touch()
    stale_fd = os.open(stale, os.O_RDWR)
    stale.unlink()
    real_open = folder_lock._open
    calls = []

    def first_stale(lock: Path, shared: bool) -> int | None:
        calls.append(lock)
        return stale_fd if len(calls) == 1 else real_open(lock, shared)

    monkeypatch.setattr(folder_lock, "_open", first_stale)
    with hold_folder(run) as held:
        assert len(calls) == 2 and held.held
        assert [h.pid for h in holders(run)] == [os.getpid()]
    with pytest.raises(OSError):
        os.fstat(stale_fd)  # closed


def test_file_systems_that_cannot_lock_get_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(folder_lock.fcntl, "flock", no_locks)
    with caplog.at_level(logging.WARNING), hold_folder(tmp_path / "run") as held:
        assert not held.held
    assert "cannot lock" in caplog.text


def test_command_line_reads_as_typed() -> None:
    assert (
        command_line(["/venv/bin/invskin", "train", "--out", "a b"]) == "invskin train --out 'a b'"
    )
    main = "/x/src/invskin/cli/main.py"
    assert command_line([main, "synth", "--out", "d"]) == "invskin synth --out d"
    assert command_line(["-c", "x"]) == "-c x"
    assert len(command_line(["invskin", "x" * 1000])) == 300


def test_on_main_rank_in_one_process_runs_the_action() -> None:
    done = []
    on_main_rank(lambda: done.append(1))
    assert done == [1]

    def refuse() -> None:
        raise FolderInUse("busy")

    with pytest.raises(FolderInUse, match="busy"):
        on_main_rank(refuse)


def test_the_lock_ends_with_its_process_even_on_sigkill(tmp_path: Path) -> None:
    holder = _hold(tmp_path / "run", shared=False)
    with pytest.raises(FolderInUse, match=f"pid {holder.pid} "):
        acquire(tmp_path / "run", shared=True)
    holder.kill()
    holder.wait()
    assert lock_path(tmp_path / "run").exists()  # its file is left, but no lock
    with hold_folder(tmp_path / "run") as held:
        assert held.held and [h.pid for h in holders(tmp_path / "run")] == [os.getpid()]


# ----------------------------------------------------------------------------- the commands


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lockdata") / "spheres"
    write_dataset(root)
    return root


def _invskin(*args: str) -> list[str]:
    return [sys.executable, "-m", "invskin.cli.main", *args]


def _train(data: Path, run: Path, method: str, steps: int, *extra: str) -> list[str]:
    return _invskin("train", "--data", str(data), "--out", str(run), "--method", method,
                    "--preset", "tiny", "--device", "cpu", "--steps", str(steps), *extra)  # fmt: skip


def _start(command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _hold(folder: Path, shared: bool) -> subprocess.Popen:
    """A process that holds the lock of ``folder`` until killed."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder), "shared" if shared else "exclusive"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    return process


def _wait_holding(folder: Path, process: subprocess.Popen, log_lines: int = 0) -> None:
    """Wait until ``process`` holds the lock of ``folder`` (and has logged ``log_lines`` steps)."""
    deadline = time.monotonic() + 120
    log = folder / "log.jsonl"
    while time.monotonic() < deadline:
        if process.pid in [h.pid for h in holders(folder)] and (
            log_lines == 0 or (log.exists() and len(log.read_text().splitlines()) >= log_lines)
        ):
            return
        if process.poll() is not None:
            raise AssertionError(f"the command ended early: {process.communicate()}")
        time.sleep(0.02)
    raise AssertionError(f"{folder} was not locked in time")


def _frozen(folder: Path, command: list[str], log_lines: int = 0) -> subprocess.Popen:
    """Start ``command``; once it holds the lock of ``folder``, freeze it (SIGSTOP)."""
    process = _start(command)
    _wait_holding(folder, process, log_lines)
    process.send_signal(signal.SIGSTOP)
    return process


def _refused(command: list[str], holder: subprocess.Popen) -> str:
    """Run ``command``; it must fail at once with the message that names ``holder``."""
    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"is in use by pid {holder.pid} (`invskin " in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    return done.stderr


def _kill(process: subprocess.Popen) -> None:
    process.kill()
    process.communicate()


def _logged_steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]


def test_a_second_training_into_one_folder_is_refused(data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = _frozen(run, _train(data, run, "ins", 4))
    message = _refused(_train(data, run, "snarf-nc", 4), first)
    assert "--method ins" in message and "train into another --out" in message
    first.send_signal(signal.SIGCONT)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    # The folder holds the first training alone: its method, its steps once each.
    assert load_checkpoint(run).state["method"] == "ins"
    assert _logged_steps(run) == [1, 2, 3, 4]
    assert not lock_path(run).exists()


def test_two_trainings_started_together_leave_one_run(data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    both = {m: _start(_train(data, run, m, 2)) for m in ("ins", "snarf-nc")}
    errors = {m: p.communicate(timeout=180)[1] for m, p in both.items()}
    winners = [m for m, p in both.items() if p.returncode == 0]
    assert len(winners) == 1, errors
    (loser,) = set(both) - set(winners)
    assert both[loser].returncode == 2
    # Started together, the loser may meet the lock before the holder has written who it is.
    assert "is in use by" in errors[loser] or "already holds a trained run" in errors[loser]
    assert load_checkpoint(run).state["method"] == winners[0]
    assert _logged_steps(run) == [1, 2]


def test_a_run_still_training_refuses_resume_writers_and_readers(
    data: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    first = _frozen(run, _train(data, run, "ins", 100_000), log_lines=3)
    try:
        _refused(_train(data, run, "ins", 100_000, "--resume"), first)
        _refused(_invskin("extract", "--run", str(run)), first)
        message = _refused(_invskin("view", "--runs", str(run), "--seconds", "0"), first)
        assert "still being written" in message
    finally:
        _kill(first)


def test_after_sigkill_of_the_holder_a_new_training_goes_ahead(data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = _start(_train(data, run, "ins", 100_000))
    _wait_holding(run, first, log_lines=3)
    _kill(first)  # kill -9: no clean release
    assert lock_path(run).exists()
    step = load_checkpoint(run).state["step"]
    again = subprocess.run(_train(data, run, "ins", step + 2, "--resume"), env=ENV,
                           capture_output=True, text=True, timeout=180)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert load_checkpoint(run).state["step"] == step + 2
    assert not lock_path(run).exists()


def test_two_synth_to_one_out(tmp_path: Path) -> None:
    out = tmp_path / "synth"
    command = _invskin("synth", "--out", str(out), "--preset", "small", "--no-progress")
    first = _frozen(out, command)  # frozen before it builds the body model
    try:
        message = _refused(command, first)
        assert "`invskin synth --out" in message and "write to another --out" in message
    finally:
        _kill(first)
    assert not out.exists()


def test_trainings_share_their_dataset_which_is_not_replaced_meanwhile(
    data: Path, tmp_path: Path
) -> None:
    """As the demo does: two trainings on one dataset at once. An import over that dataset waits."""
    first = _frozen(data, _train(data, tmp_path / "a", "ins", 100_000))
    try:
        second = subprocess.run(_train(data, tmp_path / "b", "snarf-nc", 2), env=ENV,
                                capture_output=True, text=True, timeout=180)  # fmt: skip
        assert second.returncode == 0, second.stderr
        write_plain_folder(tmp_path / "plain")
        command = _invskin("import", "folder", "--src", str(tmp_path / "plain"), "--out", str(data))
        assert "shared lock" in _refused(command, first)
    finally:
        _kill(first)


def test_the_demo_trains_side_by_side_on_one_dataset(data: Path, tmp_path: Path) -> None:
    from invskin.demo import train_side_by_side

    runs = {"ins": tmp_path / "runs" / "ins", "snarf-nc": tmp_path / "runs" / "snarf-nc"}
    train_side_by_side(data, runs, "tiny", 2, 0)
    assert {m: load_checkpoint(r).state["method"] for m, r in runs.items()} == {
        "ins": "ins",
        "snarf-nc": "snarf-nc",
    }


@pytest.mark.slow
def test_torchrun_ranks_all_stop_when_rank_0_is_refused(data: Path, tmp_path: Path) -> None:
    """Rank 0 cannot lock the run: every rank stops at once, none waits at a barrier."""
    run = tmp_path / "run"
    holder = _hold(run, shared=False)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "invskin.cli.main", "train", "--data", str(data), "--out", str(run),
        "--preset", "tiny", "--device", "cpu", "--steps", "2",
    ]  # fmt: skip
    try:
        done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300)
    finally:
        _kill(holder)
    assert done.returncode != 0
    # Each rank prints the refusal (torchrun may quote it again in its summary).
    assert done.stderr.count(f"is in use by pid {holder.pid}") >= 2, done.stderr[-3000:]
    assert not run.exists()
