#!/usr/bin/env python3
"""Times `flotilla reconcile --dry-run --base HEAD~1` on the generated repository, and
`docker stack config` on the same stack files, as whole processes. Prints the median wall
time and the peak RSS of each.

usage: measure.py RUNS FLOTILLA_BIN REPO [--no-docker]
"""
import glob
import os
import shutil
import statistics
import subprocess
import sys
import time

TIME = "/usr/bin/time"
if not os.path.exists(TIME):
    sys.exit("GNU time is needed for peak memory: apt-get install time")


def run(argv, env, ok=(0,)):
    """One run for the wall time, then one under GNU time for the peak RSS. (A child forked
    from this interpreter would carry the interpreter's ~14 MiB into its own peak; GNU
    time's small fork does not.)"""
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.execve(argv[0], argv, env)
    _, status, _ = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in ok:
        sys.exit(f"{argv} exited with {code}")
    report = subprocess.run([TIME, "-f", "%M", *argv], env=env, capture_output=True)
    return wall, int(report.stderr.decode().strip().splitlines()[-1]) / 1024.0


def main() -> None:
    runs, flotilla, repo = int(sys.argv[1]), os.path.abspath(sys.argv[2]), os.path.abspath(sys.argv[3])
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"), "NO_COLOR": "1"}
    files = sorted(glob.glob(os.path.join(repo, "stacks", "*", "stack.yml")))
    walls, peaks = [], []
    for _ in range(runs):
        w, p = run([flotilla, "reconcile", "--dry-run", "--repo", repo, "--base", "HEAD~1"], env, ok=(2,))
        walls.append(w)
        peaks.append(p)
    f_wall, f_peak = statistics.median(walls), max(peaks)
    print(f"repository: {len(files)} stacks; reconcile --dry-run --base HEAD~1 reads both revisions")
    print(f"{'command':<48} {'median ms':>10} {'peak MiB':>9}")
    print(f"{'flotilla reconcile --dry-run --base HEAD~1':<48} {f_wall * 1000:>10.1f} {f_peak:>9.1f}")
    docker = None if "--no-docker" in sys.argv else shutil.which("docker", path=env["PATH"])
    if docker is None:
        print("(no docker comparison)")
        return
    totals, one, dpeak = [], [], 0.0
    for _ in range(runs):
        total = 0.0
        for i, f in enumerate(files):
            w, p = run([docker, "stack", "config", "-c", f], env)
            total += w
            dpeak = max(dpeak, p)
            if i == 0:
                one.append(w)
        totals.append(total)
    print(f"{'docker stack config, one stack (100 services)':<48} {statistics.median(one) * 1000:>10.1f} {dpeak:>9.1f}")
    print(f"{'docker stack config, all stacks one by one':<48} {statistics.median(totals) * 1000:>10.1f} {dpeak:>9.1f}")
    print(f"(median of {runs} runs; peak RSS from GNU time; flotilla under 1 s: "
          f"{'yes' if f_wall < 1.0 else 'NO'})")


if __name__ == "__main__":
    main()
