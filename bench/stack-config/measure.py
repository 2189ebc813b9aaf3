#!/usr/bin/env python3
"""Runs each command RUNS times as a separate process; prints median wall time and peak RSS.

usage: measure.py RUNS FLOTILLA_BIN LABEL=FILE...
"""
import os
import shutil
import statistics
import subprocess
import sys
import time


def docker_bin() -> str:
    for cand in ("/usr/local/bin/docker", shutil.which("docker") or ""):
        if cand and os.path.exists(cand):
            return cand
    sys.exit("docker not found")


def measure(argv, cwd, env, runs):
    """Spawns the command RUNS times (posix_spawn: no copy of this interpreter's memory, so
    the child's peak RSS is its own) and returns median wall time, median peak RSS, output."""
    walls, peaks = [], []
    devnull = os.open(os.devnull, os.O_WRONLY)
    old = os.getcwd()
    os.chdir(cwd)
    try:
        for _ in range(runs):
            start = time.perf_counter()
            pid = os.posix_spawn(argv[0], argv, env, file_actions=[
                (os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)])
            _, status, usage = os.wait4(pid, 0)
            walls.append(time.perf_counter() - start)
            peaks.append(usage.ru_maxrss / 1024.0)
            if status != 0:
                sys.exit(f"{argv} failed with status {status}")
    finally:
        os.chdir(old)
        os.close(devnull)
    output = subprocess.run(argv, cwd=cwd, env=env, capture_output=True).stdout
    return statistics.median(walls), statistics.median(peaks), output


def main() -> None:
    runs, flotilla = int(sys.argv[1]), os.path.abspath(sys.argv[2])
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root")}
    docker = docker_bin()
    print(f"{'input':<16} {'flotilla ms':>12} {'docker ms':>10} {'speed-up':>9} {'flotilla MiB':>13} {'docker MiB':>11} {'mem ratio':>10} same-output")
    for spec in sys.argv[3:]:
        label, path = spec.split("=", 1)
        path = os.path.abspath(path)
        cwd = os.path.dirname(path)
        f_wall, f_mem, f_out = measure([flotilla, "stack", "config", "-c", path], cwd, env, runs)
        d_wall, d_mem, d_out = measure([docker, "stack", "config", "-c", path], cwd, env, runs)
        print(f"{label:<16} {f_wall*1000:>12.1f} {d_wall*1000:>10.1f} {d_wall/f_wall:>8.1f}x "
              f"{f_mem:>13.1f} {d_mem:>11.1f} {f_mem/d_mem:>10.2f} {'yes' if f_out == d_out else 'NO'}")
    print(f"(median of {runs} runs each; wall time and peak RSS of the spawned process, from wait4)")


if __name__ == "__main__":
    main()
