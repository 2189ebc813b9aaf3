#!/usr/bin/env python3
"""Writes a Git repository of STACKS stacks of PER services each (bench/stack-config/gen.py
stacks: every common compose field), commits it, then commits a change to CHANGED services:
half get a new image (a rolling update), half a new replica count (a scale).

usage: gen_repo.py OUT_DIR [STACKS=50] [PER=100] [CHANGED=100] [SPREAD=STACKS]
SPREAD is how many stacks the changed services are spread over (the default, every stack,
is the worst case: no stack can be taken over unchanged from the other revision).
Deterministic: the same arguments give the same files and the same commit ids.

Beside the repository it writes OUT_DIR.expected.json, the reference the benchmark checks
flotilla's plan against: for every service it changed, the field, its value before and
after, and whether tasks are replaced, as this script wrote them (independently of flotilla).
"""
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
GEN = os.path.join(HERE, "..", "stack-config", "gen.py")
ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@flotilla.invalid",
    "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@flotilla.invalid",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
}


def git(repo: str, *args: str) -> None:
    subprocess.run(["git", "-C", repo, *args], check=True, env=ENV, capture_output=True)


def change(path: str, k: int) -> dict:
    """Changes service k of a stack: even k a new image, odd k a new replica count. Returns
    the change as the plan should show it: {"field", "old", "new", "update"} (a new image
    replaces tasks, a new replica count does not)."""
    with open(path) as f:
        text = f.read()
    name = f"svc{k:05d}:"
    start = text.index(f"  {name}\n")
    end = text.find("\n  svc", start + 1)
    end = len(text) if end < 0 else end
    block = text[start:end]
    if k % 2 == 0:
        m = re.search(r"image: (\S+?):\$\{TAG:-([^}]*)\}", block)
        want = {"field": "image", "old": f"{m.group(1)}:{m.group(2)}", "new": f"{m.group(1)}:2.0.0",
                "update": "rolling"}
        new_block = block[:m.start()] + f"image: {want['new']}" + block[m.end():]
    else:
        m = re.search(r"replicas: (\d+)", block)
        old = int(m.group(1))
        want = {"field": "deploy.replicas", "old": str(old), "new": str(old + 1), "update": "in_place"}
        new_block = block[:m.start()] + f"replicas: {old + 1}" + block[m.end():]
    if new_block == block:
        sys.exit(f"gen_repo.py: {path}: service {name} did not change")
    with open(path, "w") as f:
        f.write(text[:start] + new_block + text[end:])
    return want


def main() -> None:
    out = sys.argv[1]
    args = [int(a) for a in sys.argv[2:6]]
    stacks, per, changed = (args + [50, 100, 100][len(args):])[:3]
    spread = args[3] if len(args) > 3 else stacks
    if changed % spread or changed // spread > per:
        sys.exit(f"gen_repo.py: {changed} changes cannot be spread evenly over {spread} stacks of {per}")
    os.makedirs(out, exist_ok=True)
    subprocess.run(["git", "init", "-q", out], check=True, env=ENV)
    for s in range(stacks):
        subprocess.run([sys.executable, GEN, str(per), os.path.join(out, "stacks", f"stack{s:02d}")], check=True)
    git(out, "add", "-A")
    git(out, "commit", "-q", "-m", "base")
    expected = {}
    for s in range(spread):
        stack = f"stack{s:02d}"
        for k in range(changed // spread):
            want = change(os.path.join(out, "stacks", stack, "stack.yml"), k)
            expected.setdefault(stack, {})[f"svc{k:05d}"] = want
    git(out, "commit", "-q", "-am", f"change {changed} services")
    with open(out.rstrip("/") + ".expected.json", "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
