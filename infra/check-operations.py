#!/usr/bin/env python3
"""Checks that operators hear about trouble and that every entry point has a limit.

Usage: check-operations.py [--template FILE] [--root DIR] [--only CHECK ...]

Checks (each prints what it found, and fails naming the resource that lacks something):
  dead-letters   every queue some RedrivePolicy targets has an alarm on its visible messages
                 (AWS/SQS ApproximateNumberOfMessagesVisible, dimension QueueName).
  functions      every AWS::Lambda::Function has an Errors and a Throttles alarm (AWS/Lambda,
                 dimension FunctionName).
  incoming-age   every queue the matcher consumes has an ApproximateAgeOfOldestMessage alarm.
  bridge         the bridge's spool depth and silence are alarmed, on metric names the bridge
                 publishes (read from bridge/src/cloudwatch.rs) in the namespace the
                 BridgeMetricsNamespace output names; silence treats missing data as breaching.
  actions        every alarm notifies the alerts topic (AlarmActions and OKActions), and the
                 topic is an output.
  concurrency    every SQS event source mapping has ScalingConfig.MaximumConcurrency; every
                 scheduled function reserves concurrency; the API stage is throttled.
  matcher-memory the matcher's memory is the MatcherMemorySize parameter, whose default is at
                 least docs/infra.md's formula (128 MB + filters x bytes per filter x 3, rounded
                 up to a power of two) for the population and bytes per filter it states.

Exit status: 0 when every check passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from cfnlint.decode import decode

CHECKS = ["dead-letters", "functions", "incoming-age", "bridge", "actions", "concurrency",
          "matcher-memory"]
BRIDGE_METRICS_SOURCE = "bridge/src/cloudwatch.rs"
LIMITS_DOC = "docs/infra.md"


def ref(value) -> str | None:
    """The logical id a `!Ref X` or `!GetAtt X.Attr` names."""
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            att = value["Fn::GetAtt"]
            return att[0] if isinstance(att, list) else str(att).split(".")[0]
    return None


def sub_text(value) -> str | None:
    """The text of a `!Sub` (string form) or a plain string."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        return sub if isinstance(sub, str) else sub[0]
    return None


class Checker:
    def __init__(self, template: dict, root: Path):
        self.resources: dict = template.get("Resources", {})
        self.outputs: dict = template.get("Outputs", {})
        self.parameters: dict = template.get("Parameters", {})
        self.root = root
        self.failures: list[str] = []
        self.notes: list[str] = []

    def fail(self, check: str, why: str) -> None:
        self.failures.append(f"{check}: {why}")

    def note(self, check: str, what: str) -> None:
        self.notes.append(f"{check}: {what}")

    def of_type(self, kind: str) -> dict:
        return {k: v for k, v in self.resources.items() if v.get("Type") == kind}

    def alarms(self) -> dict:
        return {k: v.get("Properties", {}) for k, v in self.of_type("AWS::CloudWatch::Alarm").items()}

    def alarms_on(self, namespace: str, metric: str, dimension: str, target: str) -> list[str]:
        """Alarms on `namespace`/`metric` whose `dimension` points at resource `target`."""
        found = []
        for name, p in self.alarms().items():
            if p.get("Namespace") != namespace or p.get("MetricName") != metric:
                continue
            if any(d.get("Name") == dimension and ref(d.get("Value")) == target
                   for d in p.get("Dimensions", [])):
                found.append(name)
        return found

    def esm_queues(self) -> dict[str, str]:
        """Queue logical id -> consuming function logical id, for every SQS event source mapping."""
        out = {}
        for m in self.of_type("AWS::Lambda::EventSourceMapping").values():
            p = m.get("Properties", {})
            queue, function = ref(p.get("EventSourceArn")), ref(p.get("FunctionName"))
            if queue in self.resources and self.resources[queue]["Type"] == "AWS::SQS::Queue":
                out[queue] = function
        return out

    # --- checks ---------------------------------------------------------------------------
    def dead_letters(self) -> None:
        dlqs = sorted({ref(q.get("Properties", {}).get("RedrivePolicy", {}).get("deadLetterTargetArn"))
                       for q in self.of_type("AWS::SQS::Queue").values()} - {None})
        for dlq in dlqs:
            if not self.alarms_on("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", dlq):
                self.fail("dead-letters", f"{dlq} (a dead-letter queue) has no alarm on its visible messages")
        self.note("dead-letters", f"{len(dlqs)} dead-letter queues: {', '.join(dlqs)}")

    def functions(self) -> None:
        fns = sorted(self.of_type("AWS::Lambda::Function"))
        for fn in fns:
            for metric in ("Errors", "Throttles"):
                if not self.alarms_on("AWS/Lambda", metric, "FunctionName", fn):
                    self.fail("functions", f"{fn} has no {metric} alarm")
        self.note("functions", f"{len(fns)} functions, each with Errors and Throttles alarms checked")

    def incoming_age(self) -> None:
        queues = [q for q, f in self.esm_queues().items() if f == "MatcherFunction"]
        if not queues:
            self.fail("incoming-age", "no queue feeds MatcherFunction")
        for q in queues:
            if not self.alarms_on("AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", q):
                self.fail("incoming-age", f"{q} (the matcher's input) has no age-of-oldest-message alarm")
        self.note("incoming-age", f"checked {', '.join(queues)}")

    def bridge(self) -> None:
        source = self.root / BRIDGE_METRICS_SOURCE
        published = set(re.findall(r'"(Bridge[A-Za-z]+)"', source.read_text())) if source.exists() else set()
        if not published:
            self.fail("bridge", f"no Bridge* metric names found in {BRIDGE_METRICS_SOURCE}")
        namespace = sub_text(self.outputs.get("BridgeMetricsNamespace", {}).get("Value"))
        if namespace is None:
            self.fail("bridge", "no BridgeMetricsNamespace output")
        wanted = {"BridgeSpoolDepth": None, "BridgeReceived": "breaching"}
        for metric, missing in wanted.items():
            if metric not in published:
                self.fail("bridge", f"the bridge does not publish {metric} ({BRIDGE_METRICS_SOURCE})")
            hits = [p for p in self.alarms().values()
                    if p.get("MetricName") == metric and sub_text(p.get("Namespace")) == namespace]
            if not hits:
                self.fail("bridge", f"no alarm on {metric} in namespace {namespace}")
            elif missing and not any(p.get("TreatMissingData") == missing for p in hits):
                self.fail("bridge", f"the {metric} alarm must treat missing data as {missing} "
                                    "(a dead bridge reports nothing)")
        self.note("bridge", f"namespace {namespace}; alarmed: {', '.join(sorted(wanted))}")

    def actions(self) -> None:
        topics = sorted(self.of_type("AWS::SNS::Topic"))
        alarms = self.alarms()
        if not topics:
            self.fail("actions", "no SNS topic for alerts")
        for name, p in alarms.items():
            for key in ("AlarmActions", "OKActions"):
                if not any(ref(a) in topics for a in p.get(key, [])):
                    self.fail("actions", f"{name} has no {key} to an SNS topic")
        exported = {ref(o.get("Value")) for o in self.outputs.values()}
        for t in topics:
            if t not in exported:
                self.fail("actions", f"topic {t} is not an output (operators subscribe to it)")
        self.note("actions", f"{len(alarms)} alarms notify {', '.join(topics)}")

    def concurrency(self) -> None:
        esms = self.of_type("AWS::Lambda::EventSourceMapping")
        for name, m in esms.items():
            if "MaximumConcurrency" not in m.get("Properties", {}).get("ScalingConfig", {}):
                self.fail("concurrency", f"{name} has no ScalingConfig.MaximumConcurrency")
        scheduled = sorted({ref(t.get("Arn")) for r in self.of_type("AWS::Events::Rule").values()
                            for t in r.get("Properties", {}).get("Targets", [])} - {None})
        for fn in scheduled:
            if "ReservedConcurrentExecutions" not in self.resources.get(fn, {}).get("Properties", {}):
                self.fail("concurrency", f"{fn} (scheduled) reserves no concurrency")
        stages = [d.get("Properties", {}).get("StageDescription", {})
                  for d in self.of_type("AWS::ApiGateway::Deployment").values()]
        stages += [s.get("Properties", {}) for s in self.of_type("AWS::ApiGateway::Stage").values()]
        if self.of_type("AWS::ApiGateway::RestApi") and not any(
                "ThrottlingRateLimit" in s and "ThrottlingBurstLimit" in s for s in stages):
            self.fail("concurrency", "the API stage sets no ThrottlingRateLimit and ThrottlingBurstLimit")
        # The WebSocket API's stages (the inbox, live): throttled like the REST API's.
        for name, s in self.of_type("AWS::ApiGatewayV2::Stage").items():
            route = s.get("Properties", {}).get("DefaultRouteSettings", {})
            if not ("ThrottlingRateLimit" in route and "ThrottlingBurstLimit" in route):
                self.fail("concurrency", f"{name} sets no DefaultRouteSettings throttling")
        self.note("concurrency", f"{len(esms)} mappings, {len(scheduled)} scheduled functions, API stage, "
                  f"{len(self.of_type('AWS::ApiGatewayV2::Stage'))} WebSocket stage(s)")

    def matcher_memory(self) -> None:
        doc = (self.root / LIMITS_DOC).read_text()
        per_filter = re.search(r"at most (\d+) bytes per filter", doc)
        population = re.search(r"The default \d+ MB fits ([\d,]+) filters", doc)
        if not per_filter or not population:
            self.fail("matcher-memory", f"{LIMITS_DOC} no longer states the bytes per filter and "
                      "the population the default fits")
            return
        filters = int(population.group(1).replace(",", ""))
        needed = 128 + filters * int(per_filter.group(1)) * 3 / 2**20
        rounded = 1 << (int(needed) - 1).bit_length()
        matchers = [n for n, f in self.of_type("AWS::Lambda::Function").items()
                    if ref(f.get("Properties", {}).get("MemorySize")) == "MatcherMemorySize"]
        if not matchers:
            self.fail("matcher-memory", "no function takes its memory from MatcherMemorySize")
        default = int(self.parameters.get("MatcherMemorySize", {}).get("Default", 0))
        if default < rounded:
            self.fail("matcher-memory", f"MatcherMemorySize defaults to {default} MB, below the "
                      f"{rounded} MB {LIMITS_DOC} gives {filters:,} filters ({needed:.0f} MB)")
        self.note("matcher-memory", f"{default} MB for {filters:,} filters (formula: {needed:.0f} MB, "
                  f"{rounded} rounded)")


def main(argv: list[str]) -> int:
    here = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--template", type=Path, default=here / "infra/template.yaml")
    ap.add_argument("--root", type=Path, default=here, help="repository root (the bridge's source)")
    ap.add_argument("--only", nargs="+", choices=CHECKS, default=CHECKS)
    args = ap.parse_args(argv)
    template, matches = decode(str(args.template))
    if template is None:
        print(f"check-operations: cannot parse {args.template}: {matches}", file=sys.stderr)
        return 1
    checker = Checker(template, args.root)
    for check in args.only:
        getattr(checker, check.replace("-", "_"))()
    for n in checker.notes:
        print(f"check-operations: {n}")
    for f in checker.failures:
        print(f"check-operations: FAIL {f}", file=sys.stderr)
    if not checker.failures:
        print(f"check-operations: {args.template.name}: all {len(args.only)} checks pass")
    return 1 if checker.failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
