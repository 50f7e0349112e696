"""The AWS limit checks (infra/check-limits.py, the cfn-lint rules in infra/lint.sh, and the
inline-template limit localstack/moto_server.py enforces): each passes on infra/template.yaml
and fails on a deliberately broken copy.

Run: .venv/bin/python -m unittest discover -s tests -p 'test_*.py'   (tests/run.sh does)
"""

import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra/template.yaml"
PY = sys.executable

spec = importlib.util.spec_from_file_location("check_limits", ROOT / "infra/check-limits.py")
check_limits = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_limits)


def run_checker(template: Path, *args: str, root: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PY, str(ROOT / "infra/check-limits.py"), "--template", str(template), "--root", str(root), *args],
        capture_output=True, text=True, check=False)


def insert_after(text: str, line: str, block: str) -> str:
    """`text` with `block` inserted right after the first line equal to `line`."""
    marker = f"\n{line}\n"
    assert marker in text, line
    return text.replace(marker, marker + block, 1)


class Broken:
    """Broken copies of the template, written to a temporary directory."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.text = TEMPLATE.read_text()

    def write(self, name: str, text: str) -> Path:
        path = self.tmp / name
        path.write_text(text)
        return path

    def resources(self, n: int) -> str:
        return "".join(f"  Pad{i}:\n    Type: AWS::SQS::Queue\n" for i in range(n))

    def outputs(self, n: int) -> str:
        return "".join(f"  PadOut{i}:\n    Value: x\n" for i in range(n))

    def parameters(self, n: int) -> str:
        return "".join(f"  PadParam{i}:\n    Type: String\n    Default: x\n    MaxLength: 1\n"
                       for i in range(n))


class LimitChecks(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.tmp = Path(self._tmp.name)
        self.broken = Broken(self.tmp)

    def tearDown(self):
        self._tmp.cleanup()

    def assert_fails(self, path: Path, check: str, reason: str, root: Path = ROOT):
        out = run_checker(path, "--only", check, root=root)
        self.assertEqual(out.returncode, 1, f"{check} passed on a broken copy:\n{out.stdout}")
        self.assertIn(f"FAIL {check}: ", out.stderr)
        self.assertIn(reason, out.stderr)

    def test_the_template_passes_every_check(self):
        out = run_checker(TEMPLATE)
        self.assertEqual(out.returncode, 0, out.stderr)
        print("\n" + out.stdout, end="")

    def test_template_size_fails_for_an_inline_deploy_path(self):
        # A repository whose deploy.sh passes the template inline (as before issue 13).
        root = self.tmp / "repo"
        (root / "infra").mkdir(parents=True)
        (root / "infra/deploy.sh").write_text(
            "aws cloudformation deploy --template-file infra/template.yaml --stack-name fmn\n")
        self.assert_fails(TEMPLATE, "template-size", "infra/deploy.sh passes the template inline",
                          root=root)
        (root / "infra/deploy.sh").write_text("aws cloudformation create-stack --template-body x\n")
        self.assert_fails(TEMPLATE, "template-size", "infra/deploy.sh passes the template inline",
                          root=root)

    def test_template_size_fails_over_the_template_url_limit(self):
        path = self.broken.write("big.yaml", self.broken.text + "#" * 1_000_000 + "\n")
        self.assert_fails(path, "template-size", "> 1,000,000 (TemplateURL limit)")

    def test_counts_fail(self):
        t = insert_after(self.broken.text, "Resources:", self.broken.resources(500 - 62 + 1))
        self.assert_fails(self.broken.write("r.yaml", t), "counts", "resources > 500")
        t = insert_after(self.broken.text, "Outputs:", self.broken.outputs(201))
        self.assert_fails(self.broken.write("o.yaml", t), "counts", "outputs > 200")
        t = insert_after(self.broken.text, "Parameters:", self.broken.parameters(201))
        self.assert_fails(self.broken.write("p.yaml", t), "counts", "parameters > 200")

    def test_lambda_env_fails_over_4_kb_worst_case(self):
        # A parameter allowed 3,000 bytes, fed to the API function next to what it has.
        t = insert_after(self.broken.text, "Parameters:",
                         "  Big:\n    Type: String\n    Default: x\n    MaxLength: 3000\n")
        t = t.replace("          FMN_ADMIN_USERS: !Ref AdminUsers\n",
                      "          FMN_ADMIN_USERS: !Ref AdminUsers\n          FMN_BIG: !Ref Big\n", 1)
        self.assert_fails(self.broken.write("env.yaml", t), "lambda-env", "ApiFunction: environment up to")

    def test_lambda_env_fails_for_an_unbounded_parameter(self):
        t = insert_after(self.broken.text, "Parameters:", "  Loose:\n    Type: String\n    Default: x\n")
        t = t.replace("          FMN_ADMIN_USERS: !Ref AdminUsers\n",
                      "          FMN_ADMIN_USERS: !Ref AdminUsers\n          FMN_LOOSE: !Ref Loose\n", 1)
        self.assert_fails(self.broken.write("loose.yaml", t), "lambda-env",
                          "parameter Loose (used in ApiFunction FMN_LOOSE) has no MaxLength")

    def test_iam_inline_policy_fails_over_10_kb(self):
        statement = ("              - Sid: Pad{i}\n                Effect: Allow\n"
                     "                Action: sqs:SendMessage\n"
                     "                Resource: !GetAtt EmailQueue.Arn\n")
        pad = "".join(statement.format(i=i) for i in range(40))
        t = self.broken.text.replace("              - Sid: ConsumeIncoming\n",
                                     pad + "              - Sid: ConsumeIncoming\n", 1)
        self.assert_fails(self.broken.write("iam.yaml", t), "iam-inline-policy", "MatcherRole: inline policies up to")

    def test_sqs_visibility_fails_under_6_times_the_timeout(self):
        t = self.broken.text.replace(
            "  IncomingQueue:\n    Type: AWS::SQS::Queue\n    DeletionPolicy: Delete\n"
            "    UpdateReplacePolicy: Delete\n    Properties:\n      VisibilityTimeout: 60\n",
            "  IncomingQueue:\n    Type: AWS::SQS::Queue\n    DeletionPolicy: Delete\n"
            "    UpdateReplacePolicy: Delete\n    Properties:\n      VisibilityTimeout: 59\n", 1)
        self.assertNotEqual(t, self.broken.text)
        self.assert_fails(self.broken.write("vis.yaml", t), "sqs-visibility",
                          "IncomingQueue: VisibilityTimeout 59 s < 6 x MatcherFunction Timeout 10 s")

    def test_dynamodb_keys_fail_on_a_new_oversized_key_and_on_a_changed_format(self):
        # A new key whose components can exceed the sort key limit, not known as a finding.
        checker = check_limits.Checker({}, b"", ROOT)
        check_limits.KEYS.append(("api", "sk", "HOOK#{address}#{address}#{address}", "nowhere.rs", ""))
        try:
            checker.dynamodb_keys()
        finally:
            check_limits.KEYS.pop()
        self.assertTrue(any("api.sk HOOK#{address}#{address}#{address}: up to 1,507 bytes > 1,024" in f
                            for f in checker.failures), checker.failures)
        # The store's source no longer builds a listed key as listed.
        root = self.tmp / "repo"
        src = root / "crates/fmn-store/src/confirmations.rs"
        src.parent.mkdir(parents=True)
        src.write_text((ROOT / "crates/fmn-store/src/confirmations.rs").read_text().replace(
            'format!("CONFIRM#{}#{address}", context.as_str())', 'format!("C#{}", sha(address))'))
        self.assert_fails(TEMPLATE, "dynamodb-keys", "the key changed: update KEYS", root=root)

    def test_cfn_lint_limit_rules_fail_on_a_broken_copy(self):
        # One copy breaking every limit cfn-lint checks, linted once (cfn-lint is slow).
        t = insert_after(self.broken.text, "Resources:", self.broken.resources(500 - 62 + 1))
        t = insert_after(t, "Outputs:", self.broken.outputs(201))
        t = t.replace("          FMN_ADMIN_USERS: !Ref AdminUsers\n",
                      "          FMN_ADMIN_USERS: !Ref AdminUsers\n          FMN_BIG: " + "x" * 4100 + "\n", 1)
        t = t.replace("      VisibilityTimeout: 60\n", "      VisibilityTimeout: 5\n", 1)
        t += "#" * 1_000_000 + "\n"
        path = self.broken.write("lint.yaml", t)
        out = subprocess.run(["bash", str(ROOT / "infra/lint.sh")], env={**os.environ, "TEMPLATE": str(path)},
                             capture_output=True, text=True, check=False)
        self.assertNotEqual(out.returncode, 0)
        reported = set(re.findall(r"^([EWI]\d{4}) ", out.stdout, re.M))
        for rule in ("E1002", "E3010", "E6010", "E3697", "E3505"):
            self.assertIn(rule, reported, f"cfn-lint did not report {rule}")


class InlineLimitOnMoto(unittest.TestCase):
    """localstack/moto_server.py refuses inline templates over 51,200 bytes, as AWS does: every
    deploy to moto (the local runtime, infra/deploy.sh, infra/check-moto.sh) fails if it passes
    fmn's template inline."""

    def test_moto_refuses_the_template_inline_and_takes_it_from_s3(self):
        import boto3
        from botocore.exceptions import ClientError

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        moto = subprocess.Popen([PY, str(ROOT / "localstack/moto_server.py"), "-H", "127.0.0.1", "-p", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            endpoint = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=1)
                    break
                except OSError:
                    time.sleep(0.1)
            kw = dict(endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
            cfn, s3 = boto3.client("cloudformation", **kw), boto3.client("s3", **kw)
            body = TEMPLATE.read_text()
            self.assertGreater(len(body.encode()), 51_200)
            with self.assertRaises(ClientError) as refused:
                cfn.validate_template(TemplateBody=body)
            self.assertIn("less than or equal to 51200", str(refused.exception))
            with self.assertRaises(ClientError):
                cfn.create_stack(StackName="inline", TemplateBody=body)
            s3.create_bucket(Bucket="limits-code")
            s3.put_object(Bucket="limits-code", Key="t.yaml", Body=body.encode())
            cfn.validate_template(TemplateURL="https://limits-code.s3.amazonaws.com/t.yaml")
            s3.put_object(Bucket="limits-code", Key="big.yaml", Body=(body + "#" * 1_000_000).encode())
            with self.assertRaises(ClientError) as too_big:
                cfn.validate_template(TemplateURL="https://limits-code.s3.amazonaws.com/big.yaml")
            self.assertIn("1000000", str(too_big.exception))
            # A small template inline stays fine.
            cfn.validate_template(TemplateBody='{"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}}')
        finally:
            moto.terminate()
            moto.wait()


if __name__ == "__main__":
    unittest.main()
