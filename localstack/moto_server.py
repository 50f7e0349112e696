"""moto server, as `moto_server` runs it, with one fix for fmn's local runs.

moto's `/moto-api/data.json` (where fmn reads the emails SES accepted) reads every
attribute of every model; on a Lambda function that includes `docker_client`, which raises
DockerException when no Docker engine runs (as here) and turns the whole answer into a 500.
The fix makes that one failure the TypeError that data.json already skips.

It also makes moto's CloudFormation as strict as AWS about template size, which moto does
not check: an inline `TemplateBody` over 51,200 bytes, or a template read from a
`TemplateURL` over 1,000,000 bytes, is refused with AWS's ValidationError. Every test that
deploys to moto then fails if a deploy path passes the template inline (issue 13).

moto 5.2's CloudFormation has no AWS::CloudWatch::Alarm (it logs "No Moto CloudFormation
support" and skips the resource). The model below creates, replaces and deletes the alarm
through moto's own CloudWatch backend (`put_metric_alarm`, `delete_alarms`), as AWS's and
LocalStack's CloudFormation do, so `describe-alarms` shows what a deploy made.
moto's server is threaded and its DynamoDB is not atomic across threads: a transaction's
condition check and its writes can interleave with another request's, and a cancelled
transaction restores a copy of whole tables taken before it began, undoing writes that
other requests made meanwhile. DynamoDB itself checks and writes each item atomically, and
fmn's concurrency tests (parallel confirmation guesses, concurrent preference writes) rely
on that, so DynamoDB requests are served one at a time here (moto holds the GIL anyway).
No other emulator behaviour fmn relies on is touched.
"""

import sys
import threading

from moto.cloudformation import responses as cfn_responses
from moto.cloudformation.exceptions import ValidationError
from moto.cloudwatch.models import cloudwatch_backends
from moto.core.common_models import CloudFormationModel
from moto.dynamodb.responses import DynamoHandler
from moto.server import main
from moto.utilities import docker_utilities

_docker_client = docker_utilities.DockerModel.docker_client


def _docker_client_or_type_error(self):
    try:
        return _docker_client.fget(self)
    except Exception as e:  # docker.errors.DockerException and friends
        raise TypeError(f"no Docker engine: {e}") from e


docker_utilities.DockerModel.docker_client = property(_docker_client_or_type_error)

# AWS's limits (CloudFormation quotas): inline body, and a body read from S3.
INLINE_LIMIT = 51_200
URL_LIMIT = 1_000_000


def _checked(action):
    original = getattr(cfn_responses.CloudFormationResponse, action)

    def checked(self):
        body = self._get_param("TemplateBody")
        if body is not None and len(body.encode("utf-8")) > INLINE_LIMIT:
            raise ValidationError(
                message="1 validation error detected: Value at 'templateBody' failed to "
                f"satisfy constraint: Member must have length less than or equal to {INLINE_LIMIT}"
            )
        return original(self)

    setattr(cfn_responses.CloudFormationResponse, action, checked)


for _action in ("create_stack", "update_stack", "create_change_set", "validate_template"):
    _checked(_action)

_from_url = cfn_responses.CloudFormationResponse._get_stack_from_s3_url


def _from_url_checked(self, template_url):
    body = _from_url(self, template_url)
    if len(body.encode("utf-8")) > URL_LIMIT:
        raise ValidationError(
            message=f"Template may not exceed {URL_LIMIT} bytes in size."
        )
    return body


cfn_responses.CloudFormationResponse._get_stack_from_s3_url = _from_url_checked


class CloudFormationAlarm(CloudFormationModel):
    """AWS::CloudWatch::Alarm for moto's CloudFormation, stored in moto's CloudWatch."""

    # moto files models by the service its module path names.
    __module__ = "moto.cloudwatch.fmn_cloudformation"

    def __init__(self, name: str):
        self.name = name

    @staticmethod
    def cloudformation_name_type() -> str:
        return "AlarmName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudWatch::Alarm"

    @property
    def physical_resource_id(self) -> str:
        return self.name

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Arn"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id,
                                        region_name, **kwargs):
        p = cloudformation_json["Properties"]
        backend = cloudwatch_backends[account_id][region_name]
        name = p.get("AlarmName") or resource_name
        backend.put_metric_alarm(
            name=name,
            namespace=p.get("Namespace"),
            metric_name=p.get("MetricName"),
            comparison_operator=p["ComparisonOperator"],
            evaluation_periods=int(p["EvaluationPeriods"]),
            period=int(p.get("Period", 60)),
            threshold=float(p.get("Threshold", 0)),
            statistic=p.get("Statistic"),
            description=p.get("AlarmDescription", ""),
            dimensions=[{"Name": d["Name"], "Value": str(d["Value"])} for d in p.get("Dimensions", [])],
            alarm_actions=list(p.get("AlarmActions", [])),
            datapoints_to_alarm=int(p["DatapointsToAlarm"]) if "DatapointsToAlarm" in p else None,
            ok_actions=list(p.get("OKActions", [])),
            insufficient_data_actions=list(p.get("InsufficientDataActions", [])),
            unit=p.get("Unit"),
            actions_enabled=p.get("ActionsEnabled", True),
            treat_missing_data=p.get("TreatMissingData"),
        )
        return cls(name)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name,
                                        cloudformation_json, account_id, region_name):
        cls.delete_from_cloudformation_json(original_resource.name, cloudformation_json,
                                            account_id, region_name)
        return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json,
                                                   account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id,
                                        region_name):
        cloudwatch_backends[account_id][region_name].delete_alarms([resource_name])


_dynamodb_lock = threading.Lock()
_dynamodb_call = DynamoHandler.call_action


def _dynamodb_call_serialised(self):
    with _dynamodb_lock:
        return _dynamodb_call(self)


DynamoHandler.call_action = _dynamodb_call_serialised


if __name__ == "__main__":
    sys.exit(main())
