#!/usr/bin/env python3
"""Writes a stack file of N services that uses every common compose v3 field.

usage: gen.py N OUT_DIR   -> OUT_DIR/stack.yml (+ OUT_DIR/common.env, OUT_DIR/app.conf)
Deterministic: the same N gives the same bytes.
"""
import os
import sys


def service(i: int) -> str:
    name = f"svc{i:05d}"
    return f"""  {name}:
    image: registry.example.com/team{i % 17}/app{i}:${{TAG:-1.{i % 10}.0}}
    command: ["serve", "--port", "{8000 + i % 1000}", "--name", "{name}"]
    entrypoint: /usr/bin/tini --
    environment:
      - SERVICE_NAME={name}
      - LOG_LEVEL=${{LOG_LEVEL:-info}}
      - SLOT={{{{.Task.Slot}}}}
    env_file: ./common.env
    labels:
      com.example.service: "{name}"
      com.example.index: "{i}"
    ports:
      - "{10000 + i}:{8000 + i % 1000}"
      - target: {9000 + i % 100}
        published: {40000 + i}
        protocol: udp
        mode: host
    volumes:
      - data{i % 50}:/var/lib/app
      - ./app.conf:/etc/app.conf:ro
      - type: tmpfs
        target: /tmp
        tmpfs:
          size: 67108864
    networks:
      front:
        aliases: [{name}-alias]
      back:
    configs:
      - source: app_conf
        target: /etc/app/app.conf
        mode: 0440
    secrets:
      - api_key
    healthcheck:
      test: ["CMD-SHELL", "wget -qO- http://localhost:{8000 + i % 1000}/health || exit 1"]
      interval: 10s
      timeout: 2s
      retries: 3
      start_period: 15s
    logging:
      driver: json-file
      options:
        max-size: 10m
    ulimits:
      nofile:
        soft: 20000
        hard: 40000
    extra_hosts:
      - "db.internal:10.0.{i % 250}.{i % 200 + 1}"
    stop_grace_period: 30s
    deploy:
      mode: replicated
      replicas: {1 + i % 5}
      labels:
        - com.example.tier={"web" if i % 2 else "worker"}
      update_config:
        parallelism: 2
        delay: 10s
        failure_action: rollback
        monitor: 1m
        max_failure_ratio: 0.2
        order: start-first
      rollback_config:
        parallelism: 1
        delay: 0s
      restart_policy:
        condition: on-failure
        delay: 5s
        max_attempts: 3
        window: 2m
      resources:
        limits:
          cpus: "0.5"
          memory: 256M
        reservations:
          cpus: "0.1"
          memory: 64M
      placement:
        constraints: [node.role == worker, node.labels.zone == z{i % 3}]
        preferences:
          - spread: node.labels.rack
"""


def main() -> None:
    n, out = int(sys.argv[1]), sys.argv[2]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "common.env"), "w") as f:
        f.write("REGION=eu-west-1\nFEATURE_FLAGS=a,b,c\n")
    with open(os.path.join(out, "app.conf"), "w") as f:
        f.write("listen = 0.0.0.0\n")
    parts = ['version: "3.8"\n', "services:\n"]
    parts += [service(i) for i in range(n)]
    parts.append("networks:\n  front:\n    driver: overlay\n  back:\n    driver: overlay\n    internal: true\n")
    parts.append("volumes:\n" + "".join(f"  data{i}:\n" for i in range(min(n, 50))))
    parts.append("configs:\n  app_conf:\n    file: ./app.conf\n")
    parts.append("secrets:\n  api_key:\n    file: ./app.conf\n")
    with open(os.path.join(out, "stack.yml"), "w") as f:
        f.write("".join(parts))


if __name__ == "__main__":
    main()
