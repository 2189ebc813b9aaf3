#!/usr/bin/env python3
"""Writes flotilla's compose v3 JSON Schemas, config_schema_v3.0.json .. v3.13.json.

This script is the single source of truth: one description of the compose v3 format, with
each property gated by the minor version that introduced it. Run it from any directory:

    python3 schema/json/generate.py

See PROVENANCE.md for where the facts come from and how they were checked.
"""

import json
import os

VERSIONS = [f"3.{minor}" for minor in range(14)]


def minor(version):
    return int(version.split(".")[1])


def typed(*types, **extra):
    """A schema with a `type` (one name, or a list when several) plus extra keywords."""
    out = {"type": types[0] if len(types) == 1 else list(types)}
    out.update(extra)
    return out


def ref(name):
    return {"$ref": f"#/definitions/{name}"}


def strict(properties, **extra):
    """An object that allows only the listed properties."""
    out = {"type": "object", "properties": properties}
    out.update(extra)
    out["additionalProperties"] = False
    return out


def gated(v, table):
    """Keeps the entries of {name: (since_minor, schema)} that exist in version v."""
    return {name: schema for name, (since, schema) in table.items() if minor(v) >= since}


STRING = typed("string")
DURATION = ref("duration")
STRING_LIST = typed("array", items=STRING)
UNIQUE_STRINGS = typed("array", items=STRING, uniqueItems=True)
EXTENSIONS = {"^x-": {}}


def update_config(v):
    return strict(gated(v, {
        "parallelism": (0, typed("integer")),
        "delay": (0, DURATION),
        "failure_action": (0, STRING),
        "monitor": (0, DURATION),
        "max_failure_ratio": (0, typed("number")),
        "order": (4, typed("string", enum=["start-first", "stop-first"])),
    }))


def deploy(v):
    resources_limits = strict(gated(v, {
        "cpus": (0, STRING),
        "memory": (0, STRING),
        "pids": (9, typed("integer")),
    }))
    resources_reservations = strict(gated(v, {
        "cpus": (0, STRING),
        "memory": (0, STRING),
        "generic_resources": (5, ref("generic_resources")),
    }))
    return {
        "type": ["object", "null"],
        "properties": gated(v, {
            "mode": (0, STRING),
            "endpoint_mode": (2, STRING),
            "replicas": (0, typed("integer")),
            "labels": (0, ref("list_or_dict")),
            "rollback_config": (7, update_config(v)),
            "update_config": (0, update_config(v)),
            "resources": (0, strict({
                "limits": resources_limits,
                "reservations": resources_reservations,
            })),
            "restart_policy": (0, strict({
                "condition": STRING,
                "delay": DURATION,
                "max_attempts": typed("integer"),
                "window": DURATION,
            })),
            "placement": (0, strict(gated(v, {
                "constraints": (0, STRING_LIST),
                "preferences": (3, typed("array", items=strict({"spread": STRING}))),
                "max_replicas_per_node": (8, typed("integer")),
            }))),
        }),
        "additionalProperties": False,
    }


def healthcheck(v):
    # Before 3.4 the two durations were plain strings.
    duration = DURATION if minor(v) >= 4 else STRING
    return strict(gated(v, {
        "disable": (0, typed("boolean")),
        "interval": (0, duration),
        "retries": (0, typed("number")),
        "test": (0, ref("string_or_command")),
        "timeout": (0, duration),
        "start_period": (4, DURATION),
        "start_interval": (12, DURATION),
    }))


def build(v):
    details = {
        "type": "object",
        "properties": gated(v, {
            "context": (0, STRING),
            "dockerfile": (0, STRING),
            "args": (0, ref("list_or_dict")),
            "labels": (3, ref("list_or_dict")),
            "cache_from": (2, ref("list_of_strings")),
            "network": (4, STRING),
            "target": (4, STRING),
            "shm_size": (5, typed("integer", "string")),
            "extra_hosts": (9, ref("list_or_dict")),
        }),
        # From 3.11 on, unknown build keys are accepted.
        "additionalProperties": minor(v) >= 11,
    }
    return {"oneOf": [STRING, details]}


def ports(v):
    if minor(v) < 2:
        item = typed("string", "number", format="ports")
    else:
        item = {"oneOf": [
            typed("number", format="ports"),
            typed("string", format="ports"),
            strict({
                "mode": STRING,
                "target": typed("integer"),
                "published": typed("integer"),
                "protocol": STRING,
            }),
        ]}
    return typed("array", items=item, uniqueItems=True)


def service_volumes(v):
    if minor(v) < 2:
        return UNIQUE_STRINGS
    mount = {
        "type": "object",
        "required": ["type"],
        "properties": gated(v, {
            "type": (2, STRING),
            "source": (2, STRING),
            "target": (2, STRING),
            "read_only": (2, typed("boolean")),
            "consistency": (2, STRING),
            "bind": (2, typed("object", properties={"propagation": STRING})),
            "volume": (2, typed("object", properties={"nocopy": typed("boolean")})),
            "tmpfs": (6, typed("object", properties={
                "size": typed("integer", minimum=0),
            })),
        }),
        "additionalProperties": False,
    }
    # The long syntax made the list itself no longer checked for duplicates.
    return typed("array", items={"oneOf": [STRING, mount]})


def file_reference():
    """A service's reference to a secret or config: a name, or a mapping with details."""
    return typed("array", items={"oneOf": [STRING, typed("object", properties={
        "source": STRING,
        "target": STRING,
        "uid": STRING,
        "gid": STRING,
        "mode": typed("number"),
    })]})


def service_networks(v):
    attachment = strict(gated(v, {
        "aliases": (0, ref("list_of_strings")),
        "driver_opts": (13, ref("driver_opts")),
        "ipv4_address": (0, STRING),
        "ipv6_address": (0, STRING),
    }))
    return {"oneOf": [
        ref("list_of_strings"),
        {
            "type": "object",
            "patternProperties": {"^[a-zA-Z0-9._-]+$": {"oneOf": [attachment, typed("null")]}},
            "additionalProperties": False,
        },
    ]}


def service(v):
    out = {
        "type": "object",
        "properties": gated(v, {
            "deploy": (0, ref("deploy")),
            "build": (0, build(v)),
            "cap_add": (0, UNIQUE_STRINGS),
            "cap_drop": (0, UNIQUE_STRINGS),
            "cgroupns_mode": (9, STRING),
            "cgroup_parent": (0, STRING),
            "command": (0, ref("string_or_command")),
            "configs": (3, file_reference()),
            "container_name": (0, STRING),
            "credential_spec": (3, strict(gated(v, {
                "config": (8, STRING),
                "file": (3, STRING),
                "registry": (3, STRING),
            }))),
            "depends_on": (0, ref("list_of_strings")),
            "devices": (0, UNIQUE_STRINGS),
            "dns": (0, ref("string_or_list")),
            "dns_search": (0, ref("string_or_list")),
            "domainname": (0, STRING),
            "entrypoint": (0, ref("string_or_command")),
            "env_file": (0, ref("string_or_list")),
            "environment": (0, ref("list_or_dict")),
            "expose": (0, typed("array", items=typed("string", "number", format="expose"),
                                uniqueItems=True)),
            "external_links": (0, UNIQUE_STRINGS),
            "extra_hosts": (0, ref("list_or_dict")),
            "healthcheck": (0, ref("healthcheck")),
            "hostname": (0, STRING),
            "image": (0, STRING),
            "init": (7, typed("boolean")),
            "ipc": (0, STRING),
            "isolation": (5, STRING),
            "labels": (0, ref("list_or_dict")),
            "links": (0, UNIQUE_STRINGS),
            "logging": (0, strict({
                "driver": STRING,
                "options": typed("object", patternProperties={
                    "^.+$": typed("string", "number", "null"),
                }),
            })),
            "mac_address": (0, STRING),
            "network_mode": (0, STRING),
            "networks": (0, service_networks(v)),
            "oom_score_adj": (13, typed("integer")),
            "pid": (0, typed("string", "null")),
            "ports": (0, ports(v)),
            "privileged": (0, typed("boolean")),
            "read_only": (0, typed("boolean")),
            "restart": (0, STRING),
            "secrets": (1, file_reference()),
            "security_opt": (0, UNIQUE_STRINGS),
            "shm_size": (0, typed("number", "string")),
            "stdin_open": (0, typed("boolean")),
            "stop_grace_period": (0, DURATION),
            "stop_signal": (0, STRING),
            "sysctls": (0, ref("list_or_dict")),
            "tmpfs": (0, ref("string_or_list")),
            "tty": (0, typed("boolean")),
            "ulimits": (0, typed("object", patternProperties={"^[a-z]+$": {"oneOf": [
                typed("integer"),
                strict({"hard": typed("integer"), "soft": typed("integer")},
                       required=["soft", "hard"]),
            ]}})),
            "user": (0, STRING),
            "userns_mode": (0, STRING),
            "volumes": (0, service_volumes(v)),
            "working_dir": (0, STRING),
        }),
    }
    if minor(v) >= 7:
        out["patternProperties"] = EXTENSIONS
    out["additionalProperties"] = False
    return out


def external():
    """`external: true`, or `external: {name: ...}`."""
    return typed("boolean", "object", properties={"name": STRING})


def network(v):
    out = {
        "type": ["object", "null"],
        "properties": gated(v, {
            "name": (5, STRING),
            "driver": (0, STRING),
            "driver_opts": (0, ref("driver_opts")),
            "ipam": (0, strict({
                "driver": STRING,
                "config": typed("array", items=strict({"subnet": STRING})),
            })),
            "external": (0, dict(external(), additionalProperties=False)),
            "internal": (0, typed("boolean")),
            "attachable": (2, typed("boolean")),
            "labels": (0, ref("list_or_dict")),
        }),
    }
    if minor(v) >= 7:
        out["patternProperties"] = EXTENSIONS
    out["additionalProperties"] = False
    return out


def cluster_volume():
    segments = typed("array", items=typed("object", properties={"segments": ref("list_or_dict")}))
    return typed("object", properties={
        "group": STRING,
        "access_mode": typed("object", properties={
            "scope": STRING,
            "sharing": STRING,
            "block_volume": typed("object"),
            "mount_volume": typed("object", properties={
                "fs_type": STRING,
                "mount_flags": STRING_LIST,
            }),
        }),
        "accessibility_requirements": typed("object", properties={
            "requisite": segments,
            "preferred": segments,
        }),
        "capacity_range": typed("object", properties={
            "required_bytes": STRING,
            "limit_bytes": STRING,
        }),
        "availability": STRING,
    })


def volume(v):
    out = {
        "type": ["object", "null"],
        "properties": gated(v, {
            "name": (4, STRING),
            "driver": (0, STRING),
            "driver_opts": (0, ref("driver_opts")),
            "external": (0, dict(external(), additionalProperties=False)),
            "labels": (0, ref("list_or_dict")),
            "x-cluster-spec": (10, cluster_volume()),
        }),
    }
    if minor(v) >= 7:
        out["patternProperties"] = EXTENSIONS
    out["additionalProperties"] = False
    return out


def secret(v, is_config):
    props = {
        "name": (5, STRING),
        "file": (0, STRING),
        "external": (0, external()),
        "labels": (0, ref("list_or_dict")),
    }
    if not is_config:
        props["driver"] = (8, STRING)
        props["driver_opts"] = (8, ref("driver_opts"))
    props["template_driver"] = (8, STRING)
    out = {"type": "object", "properties": gated(v, props)}
    if minor(v) >= 7:
        out["patternProperties"] = EXTENSIONS
    out["additionalProperties"] = False
    return out


def named(schema_name):
    """A top-level section: a mapping from resource names to definitions."""
    return {
        "type": "object",
        "patternProperties": {"^[a-zA-Z0-9._-]+$": ref(schema_name)},
        "additionalProperties": False,
    }


def document(v):
    definitions = {
        "service": service(v),
        "deploy": deploy(v),
        "healthcheck": healthcheck(v),
        "network": network(v),
        "volume": volume(v),
        "duration": typed("string", format="duration"),
        "string_or_command": {"oneOf": [STRING, STRING_LIST]},
        "string_or_list": {"oneOf": [STRING, ref("list_of_strings")]},
        "list_of_strings": UNIQUE_STRINGS,
        "list_or_dict": {"oneOf": [
            {
                "type": "object",
                "patternProperties": {".+": typed("string", "number", "null")},
                "additionalProperties": False,
            },
            UNIQUE_STRINGS,
        ]},
        "driver_opts": typed("object", patternProperties={"^.+$": typed("string", "number")}),
    }
    if minor(v) >= 5:
        definitions["generic_resources"] = typed("array", items=strict({
            "discrete_resource_spec": strict({"kind": STRING, "value": typed("number")}),
        }))
    if minor(v) >= 1:
        definitions["secret"] = secret(v, is_config=False)
    if minor(v) >= 3:
        definitions["config"] = secret(v, is_config=True)
    networks = named("network")
    # Network names are not restricted: unknown keys are simply not checked.
    del networks["additionalProperties"]
    out = {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "description": f"Compose file format {v}, as flotilla validates it.",
        "type": "object",
        "properties": gated(v, {
            "version": (0, STRING),
            "services": (0, named("service")),
            "networks": (0, networks),
            "volumes": (0, named("volume")),
            "secrets": (1, named("secret")),
            "configs": (3, named("config")),
        }),
    }
    if minor(v) >= 4:
        out["patternProperties"] = EXTENSIONS
    out["additionalProperties"] = False
    out["definitions"] = definitions
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    for v in VERSIONS:
        path = os.path.join(here, f"config_schema_v{v}.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(document(v), f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
