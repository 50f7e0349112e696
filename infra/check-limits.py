#!/usr/bin/env python3
"""Checks AWS limits that the emulators (moto, LocalStack) do not enforce.

Usage: check-limits.py [--template FILE] [--only CHECK ...] [--root DIR]

Checks (each prints its figure, and fails with the reason on a violation):
  template-size     the template as each deploy path passes it: inline bodies are limited to
                    51,200 bytes, a TemplateURL to 1,000,000 bytes; both of fmn's deploy paths
                    (infra/deploy.sh, the local runtime) pass a TemplateURL.
  counts            resources (500), outputs (200), parameters (200) per template.
  lambda-env        each function's environment variables, worst case, <= 4 KB (4,096 bytes;
                    keys plus values). Values are resolved at the maxima stated in MAX below;
                    a parameter that feeds an environment variable must declare MaxLength
                    (or AllowedValues), so its worst case is a number CloudFormation enforces.
  iam-inline-policy each role's inline policies together, worst case, <= 10,240 bytes (IAM
                    counts them without whitespace); references resolved as above.
  sqs-visibility    every queue feeding a function through an event source mapping has a
                    VisibilityTimeout of at least 6 x the function's Timeout (AWS's advice
                    for SQS event sources; below 1 x AWS refuses the mapping).
  dynamodb-keys     the keys of the items fmn writes (their formats are listed in KEYS with
                    the source that builds them, and verified to still be there), at their
                    components' maximum lengths: partition key <= 2,048 bytes, sort key <=
                    1,024 bytes. Known violations (KNOWN) are reported, not failed.

cfn-lint covers what it can (infra/lint.sh: E1002 template body <= 1 MB, E3010 resources,
E6010 outputs, E3697 literal environment size, E3505 visibility >= timeout; its E2010,
parameters, does not fire in cfn-lint 1.58); this script adds the worst-case and deploy-path figures cfn-lint does not compute.
Exit status: 0 when every check passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from cfnlint.decode import decode

INLINE_LIMIT = 51_200
URL_LIMIT = 1_000_000
MAX_RESOURCES, MAX_OUTPUTS, MAX_PARAMETERS = 500, 200, 200
ENV_LIMIT = 4_096
ROLE_POLICY_LIMIT = 10_240
VISIBILITY_FACTOR = 6
PK_LIMIT, SK_LIMIT = 2_048, 1_024

# Worst-case lengths of resolved references, by what they resolve to (bytes).
MAX = {
    # https://sqs.<region>.amazonaws.com/<account>/<name>: region <= 20, name <= 80.
    "AWS::SQS::Queue": 150,
    # Generated table names: <stack name>-<logical id>-<13 random>; with stack names up to
    # 64 characters (PSEUDO_MAX) and fmn's logical ids, at most 160. Named tables: 255.
    "AWS::DynamoDB::Table": 160,
    "AWS::S3::Bucket": 63,
    "AWS::Lambda::Function": 64,
    # API Gateway API ids (Ref of a WebSocket API): 10 lowercase letters and digits.
    "AWS::ApiGatewayV2::Api": 10,
    "AWS::Logs::LogGroup": 512,
    "Arn": 320,  # any Fn::GetAtt ...Arn: arn:aws:<service>:<region>:<account>:<name up to 255>
    "pseudo": 64,  # AWS::StackName (128 at most is documented; fmn's are short), Region, ...
    "other": 256,  # any other Ref / GetAtt (stated bound)
    "import": 1024,  # Fn::ImportValue (stated bound)
}
PSEUDO_MAX = {"AWS::StackName": 64,  # stated bound: fmn's stack names are short (fmn, fmn-local)
              "AWS::Region": 20, "AWS::AccountId": 12,
              "AWS::Partition": 10, "AWS::URLSuffix": 20}

# DynamoDB keys fmn writes: (table, key, format, source file, source snippet that builds it).
# Components' maximum lengths (bytes): where they are capped.
COMPONENT_MAX = {
    "user": 100,  # crates/fmn-api/src/model.rs: UserName max_length = 100
    "address": 500,  # fmn_store::MAX_ADDRESS_BYTES: the API refuses longer, the table too
    "message_id": 256,  # bus message ids: UUIDs (36) in practice; stated bound
    "context": 16,  # ContextKind::as_str()
    "hash": 64,  # hex SHA-256
    "id": 64,  # generated ids
    "batch_id": 128,  # digest batch ids: stated bound
    "expires_at": 20,  # a u64 in decimal
}
KEYS = [
    ("deliveries", "pk", "{message_id}|{user}|{context}|{address}",
     "crates/fmn-queue/src/job.rs", '"{}|{}|{}|{}"'),
    ("deliveries", "pk", "webhook-failures|{user}|{address}",
     "functions/webhook-sender/src/accounts.rs", 'format!("webhook-failures|{user}|{address}")'),
    ("deliveries", "pk", "{batch_id}|{address}",
     "crates/fmn-delivery/src/item.rs", 'format!("{}|{address}", b.id)'),
    ("deliveries", "pk", "confirm|{user}|{context}|{address}|{expires_at}",
     "crates/fmn-delivery/src/item.rs", '"confirm|{}|{}|{}|{}"'),
    ("deliveries", "pk", "notice|{id}|{user}|{context}|{address}",
     "crates/fmn-delivery/src/item.rs", '"notice|{}|{}|{}|{address}"'),
    ("api", "sk", "CONFIRM#{context}#{address}",
     "crates/fmn-store/src/confirmations.rs", 'format!("CONFIRM#{}#{address}", context.as_str())'),
    ("api", "pk", "USER#{user}", "crates/fmn-store/src/confirmations.rs", 'format!("USER#{user}")'),
    ("api", "pk", "CONFIRMRATE#{context}#{hash}", "crates/fmn-store/src/confirmations.rs",
     'format!("CONFIRMRATE#{}#{}", context.as_str(), address_hash(address))'),
    ("api", "sk", "CONFIRMSENT#{expires_at}", "crates/fmn-store/src/confirmations.rs",
     'format!("CONFIRMSENT#{day}")'),
    ("api", "sk", "CONFIRMFAIL#{context}#{hash}#{expires_at}", "crates/fmn-store/src/confirmations.rs",
     '"CONFIRMFAIL#{}#{}#{day}"'),
    ("preferences", "pk", "USER#{user}", "crates/fmn-store/src/preferences.rs", 'format!("USER#{user}")'),
    ("api", "pk", "TOKEN#{hash}", "crates/fmn-store/src/tokens.rs", 'format!("TOKEN#{hash}")'),
    ("held", "pk", "HELD#{user}#{context}", "crates/fmn-digest/src/store.rs", 'format!("HELD#{user}#{}", context.as_str())'),
    ("held", "sk", "ITEM#{message_id}", "crates/fmn-digest/src/store.rs", 'format!("ITEM#{}", job.message.id)'),
    ("inbox", "pk", "{user}", "crates/fmn-inbox/src/store.rs", 'r.insert("pk".into(), s(user));'),
    ("inbox", "sk", "UNREAD#{id}", "crates/fmn-inbox/src/store.rs", 'format!("UNREAD#{}", item.id)'),
    ("connections", "pk", "CONN#{id}", "crates/fmn-inbox/src/store.rs", 'format!("CONN#{id}")'),
]
# Violations already tracked: reported with their figure, not failed. Remove an entry once
# the store caps or hashes the component (the check then keeps it fixed).
KNOWN: dict[str, str] = {}


class Checker:
    def __init__(self, template: dict, text: bytes, root: Path):
        self.t = template
        self.size = len(text)
        self.root = root
        self.resources = template.get("Resources", {})
        self.parameters = template.get("Parameters", {})
        self.failures: list[str] = []
        self.notes: list[str] = []

    def fail(self, check: str, why: str) -> None:
        self.failures.append(f"{check}: {why}")

    def note(self, check: str, what: str) -> None:
        self.notes.append(f"{check}: {what}")

    # --- worst-case resolution of intrinsic functions -----------------------------------
    def param_max(self, name: str, where: str) -> int:
        p = self.parameters[name]
        if "AllowedValues" in p:
            return max(len(str(v).encode()) for v in p["AllowedValues"])
        if "MaxLength" in p:
            return int(p["MaxLength"])
        raise Unbounded(f"parameter {name} (used in {where}) has no MaxLength or AllowedValues")

    def ref_max(self, name: str, where: str) -> int:
        if name in PSEUDO_MAX:
            return PSEUDO_MAX[name]
        if name in self.parameters:
            return self.param_max(name, where)
        rtype = self.resources.get(name, {}).get("Type", "")
        return MAX.get(rtype, MAX["other"])

    def worst(self, value, where: str) -> int:
        """The largest number of bytes `value` can resolve to."""
        if isinstance(value, str):
            return len(value.encode())
        if isinstance(value, bool):
            return 5
        if isinstance(value, (int, float)):
            return len(str(value))
        if isinstance(value, list):
            return sum(self.worst(v, where) for v in value)
        if isinstance(value, dict) and len(value) == 1:
            (fn, arg), = value.items()
            if fn == "Ref":
                return self.ref_max(arg, where)
            if fn == "Fn::GetAtt":
                attr = arg[1] if isinstance(arg, list) else arg.split(".", 1)[1]
                return MAX["Arn"] if attr.endswith("Arn") else MAX["other"]
            if fn == "Fn::Sub":
                text, env = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                total = len(re.sub(r"\$\{[^}!]+\}", "", text).encode())
                for var in re.findall(r"\$\{([^}!]+)\}", text):
                    if var in env:
                        total += self.worst(env[var], where)
                    elif "." in var:
                        total += MAX["Arn"] if var.endswith("Arn") else MAX["other"]
                    else:
                        total += self.ref_max(var, where)
                return total
            if fn == "Fn::If":
                return max(self.worst(arg[1], where), self.worst(arg[2], where))
            if fn == "Fn::FindInMap":
                mapping = self.t["Mappings"][arg[0]]
                return max(len(str(v[arg[2]]).encode()) for v in mapping.values())
            if fn == "Fn::Join":
                parts = self.worst(arg[1], where)
                n = len(arg[1]) if isinstance(arg[1], list) else 1
                return parts + len(arg[0].encode()) * max(n - 1, 0)
            if fn == "Fn::ImportValue":
                return MAX["import"]
            if fn == "Fn::Select":
                return MAX["other"]
        if isinstance(value, dict):
            # A JSON object (policy documents): its worst-case compact JSON length.
            inner = sum(len(json.dumps(k)) + 1 + self.worst_json(v, where) for k, v in value.items())
            return 2 + inner + max(len(value) - 1, 0)
        return MAX["other"]

    def worst_json(self, value, where: str) -> int:
        """Like worst(), for a value inside a JSON document (strings carry their quotes)."""
        if isinstance(value, str):
            return len(json.dumps(value))
        if isinstance(value, list):
            return 2 + sum(self.worst_json(v, where) for v in value) + max(len(value) - 1, 0)
        if isinstance(value, dict) and len(value) == 1 and (
                next(iter(value)) == "Ref" or next(iter(value)).startswith("Fn::")):
            return 2 + self.worst(value, where)
        if isinstance(value, dict):
            return self.worst(value, where)
        return self.worst(value, where)

    # --- checks ---------------------------------------------------------------------------
    def template_size(self) -> None:
        self.note("template-size", f"{self.size:,} bytes (inline limit {INLINE_LIMIT:,}, "
                  f"TemplateURL limit {URL_LIMIT:,}); deploy paths pass it as a TemplateURL")
        if self.size > URL_LIMIT:
            self.fail("template-size", f"{self.size:,} bytes > {URL_LIMIT:,} (TemplateURL limit)")
        for path, inline in deploy_paths(self.root):
            if inline and self.size > INLINE_LIMIT:
                self.fail("template-size", f"{path} passes the template inline, and "
                          f"{self.size:,} bytes > {INLINE_LIMIT:,}")

    def counts(self) -> None:
        n_r, n_o, n_p = len(self.resources), len(self.t.get("Outputs", {})), len(self.parameters)
        self.note("counts", f"{n_r} resources (limit {MAX_RESOURCES}), {n_o} outputs "
                  f"(limit {MAX_OUTPUTS}), {n_p} parameters (limit {MAX_PARAMETERS})")
        for what, n, limit in (("resources", n_r, MAX_RESOURCES), ("outputs", n_o, MAX_OUTPUTS),
                               ("parameters", n_p, MAX_PARAMETERS)):
            if n > limit:
                self.fail("counts", f"{n} {what} > {limit}")

    def lambda_env(self) -> None:
        sizes = {}
        for name, r in self.resources.items():
            if r.get("Type") != "AWS::Lambda::Function":
                continue
            env = r.get("Properties", {}).get("Environment", {}).get("Variables", {})
            try:
                sizes[name] = sum(len(k.encode()) + self.worst(v, f"{name} {k}") for k, v in env.items())
            except Unbounded as e:
                self.fail("lambda-env", str(e))
                continue
            if sizes[name] > ENV_LIMIT:
                self.fail("lambda-env", f"{name}: environment up to {sizes[name]:,} bytes > {ENV_LIMIT:,}")
        if sizes:
            top = max(sizes, key=sizes.get)
            self.note("lambda-env", f"largest worst case {top} {sizes[top]:,} bytes "
                      f"(limit {ENV_LIMIT:,}); " + ", ".join(f"{k} {v}" for k, v in sorted(sizes.items())))

    def iam_inline_policy(self) -> None:
        sizes = {}
        for name, r in self.resources.items():
            if r.get("Type") != "AWS::IAM::Role":
                continue
            policies = r.get("Properties", {}).get("Policies", [])
            try:
                sizes[name] = sum(self.worst(p["PolicyDocument"], name) for p in policies)
            except Unbounded as e:
                self.fail("iam-inline-policy", str(e))
                continue
            if sizes[name] > ROLE_POLICY_LIMIT:
                self.fail("iam-inline-policy", f"{name}: inline policies up to {sizes[name]:,} "
                          f"bytes > {ROLE_POLICY_LIMIT:,}")
        if sizes:
            top = max(sizes, key=sizes.get)
            self.note("iam-inline-policy", f"largest worst case {top} {sizes[top]:,} bytes "
                      f"(limit {ROLE_POLICY_LIMIT:,})")

    def sqs_visibility(self) -> None:
        pairs = []
        for name, r in self.resources.items():
            if r.get("Type") != "AWS::Lambda::EventSourceMapping":
                continue
            p = r.get("Properties", {})
            source, function = p.get("EventSourceArn"), p.get("FunctionName")
            if not (isinstance(source, dict) and "Fn::GetAtt" in source
                    and isinstance(function, dict) and "Ref" in function):
                self.fail("sqs-visibility", f"{name}: source or function is not a reference to this template")
                continue
            queue = source["Fn::GetAtt"][0]
            if self.resources[queue]["Type"] != "AWS::SQS::Queue":
                continue
            visibility = int(self.resources[queue].get("Properties", {}).get("VisibilityTimeout", 30))
            timeout = int(self.resources[function["Ref"]].get("Properties", {}).get("Timeout", 3))
            pairs.append(f"{queue} {visibility} s / {function['Ref']} {timeout} s")
            if visibility < VISIBILITY_FACTOR * timeout:
                self.fail("sqs-visibility", f"{queue}: VisibilityTimeout {visibility} s < "
                          f"{VISIBILITY_FACTOR} x {function['Ref']} Timeout {timeout} s")
        self.note("sqs-visibility", f"{len(pairs)} mappings: " + "; ".join(pairs))

    def dynamodb_keys(self) -> None:
        for table, key, fmt, source, snippet in KEYS:
            path = self.root / source
            if path.exists() and snippet not in path.read_text():
                self.fail("dynamodb-keys", f"{fmt}: not found as {snippet} in {source} "
                          "(the key changed: update KEYS in infra/check-limits.py)")
                continue
            size = len(re.sub(r"\{[a-z_]+\}", "", fmt)) + sum(
                COMPONENT_MAX[c] for c in re.findall(r"\{([a-z_]+)\}", fmt))
            limit = PK_LIMIT if key == "pk" else SK_LIMIT
            if size > limit:
                if fmt in KNOWN:
                    self.note("dynamodb-keys", f"KNOWN VIOLATION {table}.{key} {fmt}: up to "
                              f"{size:,} bytes > {limit:,} ({KNOWN[fmt]})")
                else:
                    self.fail("dynamodb-keys", f"{table}.{key} {fmt}: up to {size:,} bytes > {limit:,}")
            elif fmt in KNOWN:
                self.fail("dynamodb-keys", f"{fmt} now fits ({size:,} <= {limit:,}): "
                          "remove it from KNOWN in infra/check-limits.py")
        self.note("dynamodb-keys", f"{len(KEYS)} key formats checked")


class Unbounded(Exception):
    """A value with no enforced maximum length."""


def deploy_paths(root: Path) -> list[tuple[str, bool]]:
    """Each deploy path and whether it passes the template inline (read from its source)."""
    paths = []
    deploy_sh = root / "infra/deploy.sh"
    if deploy_sh.exists():
        code = "\n".join(l for l in deploy_sh.read_text().splitlines() if not l.lstrip().startswith("#"))
        inline = "--template-body" in code or (
            "cloudformation deploy" in code and "--s3-bucket" not in code)
        paths.append(("infra/deploy.sh", inline))
    deploy_rs = root / "localstack/runtime/src/emulator/deploy.rs"
    if deploy_rs.exists():
        paths.append(("localstack/runtime/src/emulator/deploy.rs", ".template_body(" in deploy_rs.read_text()))
    check_moto = root / "infra/check-moto.sh"
    if check_moto.exists():
        paths.append(("infra/check-moto.sh", "--template-body" in check_moto.read_text()))
    return paths


CHECKS = ["template-size", "counts", "lambda-env", "iam-inline-policy", "sqs-visibility", "dynamodb-keys"]


def main(argv: list[str]) -> int:
    here = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--template", type=Path, default=here / "infra/template.yaml")
    ap.add_argument("--root", type=Path, default=here, help="repository root (deploy paths, key sources)")
    ap.add_argument("--only", nargs="+", choices=CHECKS, default=CHECKS)
    args = ap.parse_args(argv)
    template, matches = decode(str(args.template))
    if template is None:
        print(f"check-limits: cannot parse {args.template}: {matches}", file=sys.stderr)
        return 1
    checker = Checker(template, args.template.read_bytes(), args.root)
    for check in args.only:
        getattr(checker, check.replace("-", "_"))()
    for n in checker.notes:
        print(f"check-limits: {n}")
    for f in checker.failures:
        print(f"check-limits: FAIL {f}", file=sys.stderr)
    if not checker.failures:
        print(f"check-limits: {args.template.name}: all {len(args.only)} checks pass")
    return 1 if checker.failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
