#!/usr/bin/env python3
"""Runs each command RUNS times as a separate process; prints median wall time and peak RSS.
Exits 1, naming the first differing line, when flotilla's output differs from Docker's on
any input: a benchmark of a wrong answer is not a figure.

usage: measure.py RUNS FLOTILLA_BIN LABEL=FILE...
"""
import os
import shutil
import statistics
import subprocess
import sys
import time

TIME = "/usr/bin/time"
if not os.path.exists(TIME):
    sys.exit("GNU time is needed for peak memory: apt-get install time")


def docker_bin() -> str:
    for cand in ("/usr/local/bin/docker", shutil.which("docker") or ""):
        if cand and os.path.exists(cand):
            return cand
    sys.exit("docker not found")


def spawn(argv, env, devnull):
    """Runs ARGV once with its output discarded; returns the wall time and the exit status."""
    start = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=[
        (os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)])
    _, status, _ = os.wait4(pid, 0)
    return time.perf_counter() - start, status


def peak_mib(argv, env):
    """Peak RSS of one run, as GNU time reports it.

    A process's peak RSS includes the memory of whatever ran in it before exec, so a child
    spawned straight from this interpreter would start at the interpreter's ~14 MiB. GNU
    time forks a small process of its own: the floor under every figure (flotilla's and
    docker's alike) is about 1.5 MiB."""
    report = subprocess.run([TIME, "-f", "%M", *argv], env=env, capture_output=True)
    return int(report.stderr.decode().strip().splitlines()[-1]) / 1024.0


def measure(commands, cwd, env, runs):
    """Runs each command once to warm up, then RUNS times for its wall time and RUNS times
    for its peak RSS, one command after the other (as hyperfine does); returns, per
    command, the median wall time, the median peak RSS and its output."""
    results = []
    devnull = os.open(os.devnull, os.O_WRONLY)
    old = os.getcwd()
    os.chdir(cwd)
    try:
        for argv in commands:
            walls = []
            for _ in range(runs + 1):
                wall, status = spawn(argv, env, devnull)
                if status != 0:
                    sys.exit(f"{argv} failed with status {status}")
                walls.append(wall)
            peaks = [peak_mib(argv, env) for _ in range(runs)]
            output = subprocess.run(argv, env=env, capture_output=True).stdout
            results.append((statistics.median(walls[1:]), statistics.median(peaks), output))
    finally:
        os.chdir(old)
        os.close(devnull)
    return results


def first_difference(want: bytes, got: bytes) -> str:
    """The first line where flotilla's output differs from Docker's."""
    w, g = want.decode(errors="replace").splitlines(), got.decode(errors="replace").splitlines()
    for i in range(max(len(w), len(g))):
        a, b = (w[i] if i < len(w) else None), (g[i] if i < len(g) else None)
        if a != b:
            return f"line {i + 1}:\n  docker:   {a!r}\n  flotilla: {b!r}"
    return "same lines, different bytes (line endings or a final newline)"


def main() -> None:
    runs, flotilla = int(sys.argv[1]), os.path.abspath(sys.argv[2])
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root")}
    docker = docker_bin()
    differ = []
    print(f"{'input':<16} {'flotilla ms':>12} {'docker ms':>10} {'speed-up':>9} {'flotilla MiB':>13} {'docker MiB':>11} {'mem ratio':>10} same-output")
    for spec in sys.argv[3:]:
        label, path = spec.split("=", 1)
        path = os.path.abspath(path)
        commands = [[flotilla, "stack", "config", "-c", path], [docker, "stack", "config", "-c", path]]
        (f_wall, f_mem, f_out), (d_wall, d_mem, d_out) = measure(commands, os.path.dirname(path), env, runs)
        print(f"{label:<16} {f_wall*1000:>12.1f} {d_wall*1000:>10.1f} {d_wall/f_wall:>8.1f}x "
              f"{f_mem:>13.1f} {d_mem:>11.1f} {f_mem/d_mem:>10.2f} {'yes' if f_out == d_out else 'NO'}")
        if f_out != d_out:
            differ.append(f"{label} ({path}): {first_difference(d_out, f_out)}")
    print(f"(median of {runs} runs each after one warm-up run; wall time of the spawned "
          f"process, peak RSS from GNU time)")
    if differ:
        print("\n".join(differ), file=sys.stderr)
        sys.exit(f"FAIL: flotilla's output differs from docker stack config on {len(differ)} input(s)")


if __name__ == "__main__":
    main()
