"""``sslviz train`` and ``sslviz eval`` as a user runs them: real subprocesses, real files."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios

import pytest

from sslviz.models.checkpoint import checkpoint_path, load_checkpoint

EVAL_KEYS = {
    "rotation": {"accuracy", "confusion"},
    "colorization": {"psnr", "psnr_faithful", "psnr_grey", "colourfulness"},
    "jigsaw": {"accuracy", "top5", "mean_hamming", "permutations"},
}


def sslviz(*args: str, env_home, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "SSLVIZ_HOME": str(env_home), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "sslviz", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.mark.parametrize(
    "task,size,extra",
    [
        ("rotation", 16, []),
        ("colorization", 16, ["--colorization-loss", "l2"]),
        ("jigsaw", 24, ["--permutations", "30"]),
    ],
)
def test_train_then_eval_json(home, tiny, task, size, extra):
    trained = sslviz(
        "train",
        "--dataset",
        "tiny",
        "--task",
        task,
        "--image-size",
        str(size),
        "--epochs",
        "1",
        "--batch-size",
        "12",
        "--json",
        *extra,
        env_home=home,
    )
    out = json.loads(trained.stdout)  # one JSON object, nothing else on stdout
    # 36 training images in batches of 12 (colorization's faithful decode is chosen on the
    # held-out images: no training image is kept out for it)
    assert out["status"] == "finished" and out["step"] == 3
    assert EVAL_KEYS[task] <= set(out["eval"])
    evaluated = json.loads(sslviz("eval", str(out["run"]), "--json", env_home=home).stdout)
    assert evaluated["run"] == out["run"] and evaluated["task"] == task
    assert EVAL_KEYS[task] <= set(evaluated)
    if task == "rotation":
        confusion = evaluated["confusion"]
        assert len(confusion) == 4 and all(len(row) == 4 for row in confusion)
        assert all(sum(row) == 4 for row in confusion)  # 4 held-out images per true angle
    if task == "jigsaw":
        assert evaluated["permutations"] == 30


def test_plain_train_prints_the_run_id_and_a_progress_bar(home, tiny):
    # the bar is drawn only on a terminal: give stderr a pseudo-terminal, as a shell would
    env = {**os.environ, "SSLVIZ_HOME": str(home), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "sslviz",
        "train",
        "--dataset",
        "tiny",
        "--task",
        "rotation",
        "--image-size",
        "16",
        "--epochs",
        "1",
    ]
    terminal, stderr = pty.openpty()
    fcntl.ioctl(stderr, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 24x100
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=stderr)
    os.close(stderr)
    shown = b""
    while True:
        try:
            chunk = os.read(terminal, 4096)
        except OSError:  # EIO: the process closed its side
            break
        if not chunk:
            break
        shown += chunk
    os.close(terminal)
    stdout, _ = process.communicate(timeout=300)
    assert process.returncode == 0, shown.decode(errors="replace")
    assert stdout.decode().strip().isdigit()
    text = shown.decode(errors="replace")
    assert "training: 100%" in text and "it/s" in text, text  # count, rate: tqdm


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--task", "jigsaw", "--image-size", "12"], "--image-size"),
        (["--task", "rotation", "--batch-size", "1"], "--batch-size"),
        (["--task", "rotation", "--encoder", "vgg"], "small-cnn"),
        (["--task", "rotation", "--device", "cuda:3"], "cpu"),
        (["--task", "rotation", "--permutations", "30"], "jigsaw"),
    ],
)
def test_bad_configs_are_one_line_errors_before_any_work(home, tiny, flags, message):
    result = sslviz("train", "--dataset", "tiny", *flags, env_home=home, check=False)
    assert result.returncode == 1 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (home / "runs").exists()


def test_eval_of_a_missing_run_is_a_one_line_error(home, tiny):
    result = sslviz("eval", "99", "--json", env_home=home, check=False)
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1


def torchrun(*args: str, env_home) -> subprocess.CompletedProcess:
    """``torchrun --nproc_per_node 2 -m sslviz ARGS``; asserts it exited 0."""
    env = {**os.environ, "SSLVIZ_HOME": str(env_home), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--standalone",
        "-m",
        "sslviz",
        *args,
    ]
    launcher = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = launcher.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(launcher.pid, signal.SIGKILL)  # torchrun and both ranks: its own session
        raise
    assert launcher.returncode == 0, stderr
    return subprocess.CompletedProcess(command, launcher.returncode, stdout, stderr)


@pytest.mark.slow
def test_ddp_ranks_follow_one_clock_with_their_own_seeds_under_a_time_budget(home, tiny, store):
    # 13 images a step: shards of 7 and 6; the budget, not the epochs, ends training
    result = torchrun(
        "train",
        "--dataset",
        "tiny",
        "--task",
        "jigsaw",
        "--image-size",
        "24",
        "--permutations",
        "30",
        "--batch-size",
        "13",
        "--time-budget",
        "2",
        "--json",
        env_home=home,
    )
    ddp = json.loads(result.stdout.strip().splitlines()[-1])
    assert ddp["status"] == "finished"
    lines = {
        rank: re.search(
            rf"rank {rank}/2 took (\d+) steps on (\d+) images; last lr (\S+); seed (\d+)",
            result.stderr,
        ).groups()
        for rank in (0, 1)
    }
    (steps0, images0, lr0, seed0), (steps1, images1, lr1, seed1) = lines[0], lines[1]
    assert steps0 == steps1 == str(ddp["step"])
    assert lr0 == lr1  # the very same schedule: rank 0's clock, not each rank's own
    assert seed0 != seed1  # own dropout masks (the weights start equal: DDP broadcasts them)
    assert int(images0) == 7 * ddp["step"] and int(images1) == 6 * ddp["step"]


@pytest.mark.slow
def test_ddp_two_processes_on_cpu_match_a_single_process_run(home, tiny, store):
    args = [
        "train",
        "--dataset",
        "tiny",
        "--task",
        "rotation",
        "--image-size",
        "16",
        "--epochs",
        "2",
        "--batch-size",
        "12",
        "--json",
    ]
    single = json.loads(sslviz(*args, env_home=home).stdout)
    result = torchrun(*args, env_home=home)
    ddp = json.loads(result.stdout.strip().splitlines()[-1])
    assert ddp["status"] == "finished" and ddp["step"] == single["step"] == 6
    for rank in (0, 1):  # both ranks stepped, each on half of every batch
        assert f"rank {rank}/2 took 6 steps on 36 images;" in result.stderr
        assert store.runs.metrics(ddp["run"], f"ddp/images_rank{rank}")[0].value == 36
    one = load_checkpoint(checkpoint_path(store.workspace.run_dir(single["run"])))["model"]
    two = load_checkpoint(checkpoint_path(store.workspace.run_dir(ddp["run"])))["model"]
    assert {k: v.shape for k, v in one.items()} == {k: v.shape for k, v in two.items()}
