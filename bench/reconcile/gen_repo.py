#!/usr/bin/env python3
"""Writes a Git repository of STACKS stacks of PER services each (bench/stack-config/gen.py
stacks: every common compose field), commits it, then commits a change to CHANGED services:
half get a new image (a rolling update), half a new replica count (a scale).

usage: gen_repo.py OUT_DIR [STACKS=50] [PER=100] [CHANGED=100] [SPREAD=STACKS]
SPREAD is how many stacks the changed services are spread over (the default, every stack,
is the worst case: no stack can be taken over unchanged from the other revision).
Deterministic: the same arguments give the same files and the same commit ids.
"""
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


def change(path: str, k: int) -> None:
    """Changes service k of a stack: even k a new image, odd k a new replica count."""
    with open(path) as f:
        text = f.read()
    name = f"svc{k:05d}:"
    start = text.index(f"  {name}\n")
    end = text.find("\n  svc", start + 1)
    end = len(text) if end < 0 else end
    block = text[start:end]
    if k % 2 == 0:
        block = re.sub(r"(image: \S+?):\$\{TAG:-[^}]*\}", r"\1:2.0.0", block, count=1)
    else:
        block = re.sub(r"replicas: (\d+)", lambda m: f"replicas: {int(m.group(1)) + 1}", block, count=1)
    with open(path, "w") as f:
        f.write(text[:start] + block + text[end:])


def main() -> None:
    out = sys.argv[1]
    args = [int(a) for a in sys.argv[2:6]]
    stacks, per, changed = (args + [50, 100, 100][len(args):])[:3]
    spread = args[3] if len(args) > 3 else stacks
    os.makedirs(out, exist_ok=True)
    subprocess.run(["git", "init", "-q", out], check=True, env=ENV)
    for s in range(stacks):
        subprocess.run([sys.executable, GEN, str(per), os.path.join(out, "stacks", f"stack{s:02d}")], check=True)
    git(out, "add", "-A")
    git(out, "commit", "-q", "-m", "base")
    per_stack = max(1, changed // spread)
    done = 0
    for s in range(spread):
        for k in range(per_stack):
            if done < changed:
                change(os.path.join(out, "stacks", f"stack{s:02d}", "stack.yml"), k)
                done += 1
    git(out, "commit", "-q", "-am", f"change {done} services")


if __name__ == "__main__":
    main()
