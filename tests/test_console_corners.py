"""What a new user meets on the console: one clear line and a documented exit code, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from adapters.nats.server import free_port


def kadaster(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KADASTER_")}
    return subprocess.run(
        [sys.executable, "-m", "adapters.cli", *argv], env=env, capture_output=True, text=True, timeout=60
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_nats_out_of_reach_is_one_line_and_exit_3() -> None:
    result = kadaster(
        "midid",
        "issue",
        "--hospital",
        "H001",
        "--modality",
        "CT",
        "--nats-url",
        f"nats://127.0.0.1:{free_port()}",
    )
    assert result.returncode == 3
    assert one_line(result).startswith("kadaster: cannot reach NATS at nats://127.0.0.1:")


def test_a_missing_data_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = kadaster(
        "send", "midid.issue", "--source", "hospital/H001", "--data", f"@{tmp_path / 'nope.json'}"
    )
    assert result.returncode == 2
    assert (
        one_line(result)
        == f"kadaster: cannot read --data file {tmp_path / 'nope.json'}: No such file or directory"
    )


def test_a_malformed_source_is_named_as_such_not_as_nats_out_of_reach() -> None:
    result = kadaster("send", "midid.issue", "--source", "hospital", "--data", "{}")
    assert result.returncode == 2
    assert one_line(result).startswith("kadaster: --source: 'hospital' is not a source")


def test_output_cut_short_by_its_reader_ends_quietly() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KADASTER_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "adapters.cli", "contract", "asyncapi"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    # The reader is gone before the first line is written, as `| head` is once it has its lines.
    process.stdout.close()
    errors = process.stderr.read().decode()
    assert process.wait(60) == 0
    assert "BrokenPipe" not in errors and "Traceback" not in errors, errors
