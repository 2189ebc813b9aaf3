#!/usr/bin/env python3
"""Times `flotilla reconcile --dry-run --base HEAD~1` on the generated repository, and
`docker stack config` on the same stack files, as whole processes. Prints the median wall
time and the peak RSS of each.

Before timing, it checks the plan flotilla prints against REPO.expected.json, the changes
gen_repo.py made (written by the generator, not by flotilla), and exits 1 when they differ.
Every command runs once to warm up before the timed runs.

usage: measure.py RUNS FLOTILLA_BIN REPO [--no-docker]
"""
import glob
import json
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


def plan_changes(plan):
    """The services a JSON plan changes, in the reference's shape; anything else the plan
    would do (a created, removed or orphaned object, a service with several fields) is
    returned as a problem."""
    got, problems = {}, []
    for stack, sp in plan["stacks"].items():
        for kind in ("networks", "configs", "secrets"):
            problems += [f"{stack}: {kind} {n}: {o['action']}" for n, o in sp[kind].items()]
        for key, svc in sp["services"].items():
            fields = svc["fields"]
            if svc["action"] != "update" or len(fields) != 1 or svc["reasons"]:
                problems.append(f"{stack}.{key}: {svc['action']} {fields} {svc['reasons']}")
                continue
            f = fields[0]
            got.setdefault(stack, {})[key] = {
                "field": f["path"], "old": f.get("old"), "new": f.get("new"), "update": svc.get("update")}
    return got, problems


def check_plan(flotilla, repo, env, text_output):
    """Exits 1 unless flotilla's plan is exactly the generator's reference."""
    with open(repo.rstrip("/") + ".expected.json") as f:
        want = json.load(f)
    argv = [flotilla, "reconcile", "--dry-run", "--repo", repo, "--base", "HEAD~1", "--output", "json"]
    out = subprocess.run(argv, env=env, capture_output=True)
    if out.returncode != 2:
        sys.exit(f"FAIL: {' '.join(argv)} exited {out.returncode}: {out.stderr.decode()}")
    got, problems = plan_changes(json.loads(out.stdout))
    n = sum(len(v) for v in want.values())
    for stack in sorted(set(want) | set(got)):
        w, g = want.get(stack, {}), got.get(stack, {})
        problems += [f"{stack}.{k}: want {w.get(k)}, plan says {g.get(k)}"
                     for k in sorted(set(w) | set(g)) if w.get(k) != g.get(k)]
    summary = f"Plan: 0 to create, {n} to update, 0 to remove, 0 orphaned;"
    if summary not in text_output:
        problems.append(f"the text plan does not say {summary!r}")
    if problems:
        print("\n".join(problems[:20]), file=sys.stderr)
        sys.exit(f"FAIL: flotilla's plan differs from the generator's {n} changes "
                 f"({len(problems)} differences)")
    print(f"plan checked: the {n} changed services of the generator's reference, nothing else")


def main() -> None:
    runs, flotilla, repo = int(sys.argv[1]), os.path.abspath(sys.argv[2]), os.path.abspath(sys.argv[3])
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"), "NO_COLOR": "1"}
    files = sorted(glob.glob(os.path.join(repo, "stacks", "*", "stack.yml")))
    argv = [flotilla, "reconcile", "--dry-run", "--repo", repo, "--base", "HEAD~1"]
    warm_up = subprocess.run(argv, env=env, capture_output=True)
    check_plan(flotilla, repo, env, warm_up.stdout.decode())
    walls, peaks = [], []
    for _ in range(runs):
        w, p = run(argv, env, ok=(2,))
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
    for f in files:
        run([docker, "stack", "config", "-c", f], env)
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
    print(f"(median of {runs} runs after one warm-up run; peak RSS from GNU time; flotilla under 1 s: "
          f"{'yes' if f_wall < 1.0 else 'NO'})")


if __name__ == "__main__":
    main()
