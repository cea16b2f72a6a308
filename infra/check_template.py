#!/usr/bin/env python3
"""Expands infra/template.yaml with aws-sam-translator (offline) and checks what cfn-lint and
checkov cannot: least-privilege IAM in the *expanded* template (SAM adds roles and policies
of its own), the SQS visibility-timeout rule, and that the template and the Rust code agree on
binary names and environment variables.

Writes the expanded template as JSON (for `cfn-lint` to lint the expansion) and exits non-zero
with one line per problem. Run by `make infra-check`:

    python infra/check_template.py --out target/infra/expanded.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "template.yaml"
SAMCONFIG = ROOT / "infra" / "samconfig.toml"
NAMES_RS = ROOT / "shared" / "src" / "aws" / "names.rs"

# The translator resolves the partition from the region; no AWS call is made.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from samtranslator.translator.transform import transform  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402


class NoManagedPolicies:
    """The translator's managed-policy lookup, offline. The template names no managed policy
    (every role is written out), so any lookup is itself a finding."""

    def __init__(self) -> None:
        self.asked = False

    def load(self) -> dict[str, str]:
        self.asked = True
        return {}


def load_template() -> dict:
    return yaml_parse(TEMPLATE.read_text())


def defaults(template: dict) -> dict[str, str]:
    return {
        name: str(p["Default"])
        for name, p in template.get("Parameters", {}).items()
        if "Default" in p
    }


def samconfig_overrides() -> dict[str, dict[str, str]]:
    """parameter_overrides of every environment and command in infra/samconfig.toml."""
    if not SAMCONFIG.exists():
        return {}
    config = tomllib.loads(SAMCONFIG.read_text())
    found: dict[str, dict[str, str]] = {}
    for env, commands in config.items():
        if not isinstance(commands, dict):
            continue
        for command, section in commands.items():
            params = section.get("parameters", {}) if isinstance(section, dict) else {}
            raw = params.get("parameter_overrides")
            if raw is None:
                continue
            items = raw if isinstance(raw, list) else shlex.split(raw)
            found[f"{env}.{command}"] = dict(i.split("=", 1) for i in items)
    return found


def expand(template: dict) -> dict:
    """The template as CloudFormation sees it after the SAM transform."""
    tpl = json.loads(json.dumps(template))
    # The translator wants an uploaded artifact; the content does not matter here.
    tpl.get("Globals", {}).get("Function", {}).pop("CodeUri", None)
    for res in tpl["Resources"].values():
        if res.get("Type") == "AWS::Serverless::Function":
            res.setdefault("Properties", {})["CodeUri"] = "s3://orglink-check/code.zip"
    loader = NoManagedPolicies()
    out = transform(tpl, defaults(template), loader, passthrough_metadata=True)
    if loader.asked:
        raise SystemExit("the template asked for a managed policy: write the statements out")
    # The translator drops Metadata from plain CloudFormation resources; put it back so checkov
    # sees the inline skips (and their reasons) on the expansion too.
    for rid, res in template["Resources"].items():
        if "Metadata" in res and rid in out["Resources"] and "Metadata" not in out["Resources"][rid]:
            out["Resources"][rid]["Metadata"] = res["Metadata"]
    return out


def as_list(v) -> list:
    return v if isinstance(v, list) else [v]


def iam_problems(expanded: dict) -> list[str]:
    """Every identity-policy statement names its actions and resources: no `*` in an action, no
    `Resource: "*"`, no NotAction/NotResource, no managed policies. Resource policies (SQS
    queue policies) get the action rule too."""
    problems = []

    def statements(doc):
        for st in as_list(doc.get("Statement", [])):
            yield st

    def check(where: str, doc: dict, resource_policy: bool) -> None:
        for i, st in enumerate(statements(doc)):
            at = f"{where} statement {st.get('Sid', i)}"
            if "NotAction" in st or "NotResource" in st:
                problems.append(f"{at}: NotAction/NotResource")
            for action in as_list(st.get("Action", [])):
                if isinstance(action, str) and "*" in action:
                    problems.append(f"{at}: wildcard action {action}")
            if not resource_policy and st.get("Effect") == "Allow":
                for r in as_list(st.get("Resource", [])):
                    if r == "*" or (isinstance(r, str) and r.endswith(":*") and r.count(":") < 6):
                        problems.append(f"{at}: unscoped resource {r}")
                if "Resource" not in st:
                    problems.append(f"{at}: no Resource")

    for rid, res in expanded["Resources"].items():
        kind, props = res.get("Type"), res.get("Properties", {})
        if kind == "AWS::IAM::Role":
            if props.get("ManagedPolicyArns"):
                problems.append(f"{rid}: managed policies {props['ManagedPolicyArns']}")
            for pol in props.get("Policies", []):
                check(f"{rid}/{pol.get('PolicyName')}", pol["PolicyDocument"], False)
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            check(rid, props["PolicyDocument"], False)
        elif kind == "AWS::SQS::QueuePolicy":
            check(rid, props["PolicyDocument"], True)
    return problems


def visibility_problems(template: dict) -> list[str]:
    """AWS: the queue's visibility timeout at least 6x the function's timeout (cfn-lint checks
    only 1x). CloudFormation cannot compute, so check the values a deploy would use."""
    problems = []
    base = defaults(template)
    for where, overrides in {"defaults": {}, **samconfig_overrides()}.items():
        values = {**base, **overrides}
        vis = int(values["QueueVisibilityTimeoutSeconds"])
        timeout = int(values["WorkerTimeoutSeconds"])
        if vis < 6 * timeout:
            problems.append(
                f"{where}: QueueVisibilityTimeoutSeconds {vis} < 6 x WorkerTimeoutSeconds {timeout}"
            )
    return problems


WORKER_SETTINGS_RS = ROOT / "functions" / "sync-worker" / "src" / "settings.rs"


# Receives after the requeue receive that may end unanswered (a crashed, timed-out or
# throttled invocation, a lost delete) without dead-lettering a retried message. AWS asks for a
# redrive count of at least 5 behind Lambda for throttling alone; with 1 spare (4 and 5) the
# 2,000-event chaos run dead-lettered 2 messages (functions/sync-worker/tests/dead_letters.rs).
MIN_SPARE_RECEIVES = 5


def requeue_problems(template: dict) -> list[str]:
    """The worker re-sends a message that must be retried once it has been received
    `requeue_at_receive_count` times, so that retries never reach the queue's maxReceiveCount
    (the DLQ is for crashes and poison only): that count must stay below MaxReceiveCount, with
    MIN_SPARE_RECEIVES receives to spare."""
    problems = []
    if not WORKER_SETTINGS_RS.exists():
        print(f"infra check: {WORKER_SETTINGS_RS} does not exist yet; requeue rule not checked")
        return []
    found = re.search(r"requeue_at_receive_count: (\d+),", WORKER_SETTINGS_RS.read_text())
    if not found:
        return [f"{WORKER_SETTINGS_RS}: the default requeue_at_receive_count was not found"]
    base = defaults(template)
    for where, overrides in {"defaults": {}, **samconfig_overrides()}.items():
        values = {**base, **overrides}
        settings = json.loads(values.get("WorkerSettings") or "{}")
        requeue = int(settings.get("requeue_at_receive_count", found.group(1)))
        if requeue >= int(values["MaxReceiveCount"]):
            problems.append(
                f"{where}: the worker's requeue_at_receive_count {requeue} is not below "
                f"MaxReceiveCount {values['MaxReceiveCount']}"
            )
        elif int(values["MaxReceiveCount"]) - requeue < MIN_SPARE_RECEIVES:
            problems.append(
                f"{where}: MaxReceiveCount {values['MaxReceiveCount']} leaves fewer than "
                f"{MIN_SPARE_RECEIVES} receives after the worker's requeue_at_receive_count "
                f"{requeue}: unanswered receives (crashes, throttles, lost deletes) would "
                "dead-letter retried messages"
            )
    return problems


def agreement_problems(template: dict) -> list[str]:
    """The functions' Binary names are [[bin]] targets in the workspace, and every variable
    ResourceNames::from_env reads is set for every function."""
    problems = []
    bins = set()
    for manifest in (ROOT / "functions").glob("*/Cargo.toml"):
        for b in tomllib.loads(manifest.read_text()).get("bin", []):
            bins.add(b["name"])
    wanted = re.search(r"ENV_VARS: \[&str; \d+\] = \[(.*?)\];", NAMES_RS.read_text(), re.S)
    env_vars = set(re.findall(r'"([A-Z_]+)"', wanted.group(1))) if wanted else set()
    if not env_vars:
        problems.append(f"{NAMES_RS}: ENV_VARS not found")
    global_env = (
        template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    )
    for rid, res in template["Resources"].items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        meta = res.get("Metadata", {})
        if meta.get("BuildMethod") != "rust-cargolambda":
            problems.append(f"{rid}: BuildMethod is not rust-cargolambda")
        binary = meta.get("BuildProperties", {}).get("Binary")
        if binary not in bins:
            problems.append(f"{rid}: Binary {binary!r} is not a [[bin]] in functions/ ({sorted(bins)})")
        own_env = res.get("Properties", {}).get("Environment", {}).get("Variables", {})
        missing = env_vars - set(global_env) - set(own_env)
        if missing:
            problems.append(f"{rid}: environment lacks {sorted(missing)}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="where to write the expansion")
    args = parser.parse_args()
    template = load_template()
    expanded = expand(template)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(expanded, indent=1, sort_keys=True))
    problems = (
        iam_problems(expanded)
        + visibility_problems(template)
        + requeue_problems(template)
        + agreement_problems(template)
    )
    for p in problems:
        print(f"infra check: {p}", file=sys.stderr)
    kinds: dict[str, int] = {}
    for res in expanded["Resources"].values():
        kinds[res["Type"]] = kinds.get(res["Type"], 0) + 1
    print(
        f"infra check: expanded to {len(expanded['Resources'])} resources "
        f"({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}) -> {args.out}; "
        f"{len(problems)} problems"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
