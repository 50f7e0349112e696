"""The operations checks (infra/check-operations.py): each passes on infra/template.yaml and
fails, naming the resource, on a deliberately broken copy.

Run: .venv/bin/python -m unittest discover -s tests -p 'test_*.py'   (tests/run.sh does)
"""

import re
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra/template.yaml"


def check(text: str, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "template.yaml"
        path.write_text(text)
        return subprocess.run(
            [sys.executable, str(ROOT / "infra/check-operations.py"), "--template", str(path), *args],
            capture_output=True, text=True, check=False)


def drop_resource(text: str, name: str) -> str:
    """`text` without the resource `name` (its block up to the next blank line)."""
    pattern = re.compile(rf"\n  {name}:\n(?:    .*\n|\s*#.*\n)*")
    assert pattern.search(text), name
    return pattern.sub("\n", text, count=1)


class OperationsChecks(unittest.TestCase):
    text = TEMPLATE.read_text()

    def assert_fails(self, text: str, expected: str, *args: str) -> None:
        out = check(text, *args)
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertIn(expected, out.stderr)

    def test_the_template_passes_every_check(self):
        out = check(self.text)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("all 7 checks pass", out.stdout)

    def test_a_dead_letter_queue_without_an_alarm_fails(self):
        self.assert_fails(drop_resource(self.text, "EmailDeadLetterAlarm"),
                          "EmailDeadLetterQueue (a dead-letter queue) has no alarm", "--only", "dead-letters")

    def test_a_new_dead_letter_queue_needs_its_alarm(self):
        added = self.text.replace("\nOutputs:\n", """
  ExtraQueue:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy: {deadLetterTargetArn: !GetAtt ExtraDeadLetterQueue.Arn, maxReceiveCount: 5}
  ExtraDeadLetterQueue:
    Type: AWS::SQS::Queue

Outputs:
""", 1)
        self.assert_fails(added, "ExtraDeadLetterQueue (a dead-letter queue) has no alarm", "--only", "dead-letters")

    def test_a_function_without_its_throttles_alarm_fails(self):
        self.assert_fails(drop_resource(self.text, "MatrixSenderThrottlesAlarm"),
                          "MatrixSenderFunction has no Throttles alarm", "--only", "functions")

    def test_incoming_without_its_age_alarm_fails(self):
        self.assert_fails(drop_resource(self.text, "IncomingAgeAlarm"),
                          "IncomingQueue (the matcher's input) has no age", "--only", "incoming-age")

    def test_a_silence_alarm_blind_to_a_dead_bridge_fails(self):
        blind = self.text.replace("      TreatMissingData: breaching\n", "      TreatMissingData: notBreaching\n")
        self.assertNotEqual(blind, self.text)
        self.assert_fails(blind, "must treat missing data as breaching", "--only", "bridge")

    def test_an_alarm_on_a_metric_the_bridge_does_not_publish_fails(self):
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "bridge/src").mkdir(parents=True)
            source = (ROOT / "bridge/src/cloudwatch.rs").read_text().replace('"BridgeReceived"', '"BridgeIn"')
            (Path(tmp) / "bridge/src/cloudwatch.rs").write_text(source)
            self.assert_fails(self.text, "the bridge does not publish BridgeReceived", "--only", "bridge",
                              "--root", tmp)

    def test_an_alarm_that_notifies_nobody_fails(self):
        silent = self.text.replace(
            "  IncomingAgeAlarm:", "  IncomingAgeAlarm:", 1)
        block = re.search(r"\n  IncomingAgeAlarm:\n(?:    .*\n)*", silent).group(0)
        silent = silent.replace(block, block.replace("      AlarmActions: [!Ref AlertsTopic]\n", ""), 1)
        self.assert_fails(silent, "IncomingAgeAlarm has no AlarmActions", "--only", "actions")

    def test_unbounded_concurrency_fails(self):
        unbounded = self.text.replace("      ScalingConfig: {MaximumConcurrency: !Ref ChatMaxConcurrency}\n", "", 1)
        self.assert_fails(unbounded, "has no ScalingConfig.MaximumConcurrency", "--only", "concurrency")
        unthrottled = self.text.replace("        ThrottlingRateLimit: !Ref ApiThrottleRate\n", "")
        self.assert_fails(unthrottled, "the API stage sets no ThrottlingRateLimit", "--only", "concurrency")
        overlapping = self.text.replace(
            "      ReservedConcurrentExecutions: !If [ReserveScheduled, 1, !Ref AWS::NoValue]\n", "", 1)
        self.assert_fails(overlapping, "(scheduled) reserves no concurrency", "--only", "concurrency")

    def test_a_matcher_memory_below_the_documented_formula_fails(self):
        small = self.text.replace(
            "    Default: 512\n    MinValue: 256\n    MaxValue: 10240\n",
            "    Default: 256\n    MinValue: 256\n    MaxValue: 10240\n", 1)
        self.assertNotEqual(small, self.text)
        self.assert_fails(small, "MatcherMemorySize defaults to 256 MB, below the 512 MB",
                          "--only", "matcher-memory")
        fixed = self.text.replace("      MemorySize: !Ref MatcherMemorySize\n", "      MemorySize: 512\n", 1)
        self.assert_fails(fixed, "no function takes its memory from MatcherMemorySize",
                          "--only", "matcher-memory")


if __name__ == "__main__":
    unittest.main()
