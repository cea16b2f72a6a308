"""infra/check_template.py: the project's template passes, and each rule catches what it is for
(so a green `make infra-check` means something)."""

import copy
import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("check_template", REPO / "infra" / "check_template.py")
check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check)


@pytest.fixture(scope="module")
def template():
    return check.load_template()


@pytest.fixture(scope="module")
def expanded(template):
    return check.expand(template)


def test_the_project_template_passes_every_rule(template, expanded):
    assert check.iam_problems(expanded) == []
    assert check.visibility_problems(template) == []
    assert check.agreement_problems(template) == []
    assert check.requeue_problems(template) == []


def test_the_expansion_has_what_the_issue_asks_for(expanded):
    res = expanded["Resources"]
    functions = {k: v["Properties"] for k, v in res.items() if v["Type"] == "AWS::Lambda::Function"}
    assert set(functions) == {"IntakeFunction", "SyncWorkerFunction", "ReconcileFunction"}
    for props in functions.values():
        assert props["Runtime"] == "provided.al2023"
        assert props["Architectures"] == [{"Ref": "Architecture"}]
        assert "Role" in props and "LoggingConfig" in props
    url = next(v["Properties"] for v in res.values() if v["Type"] == "AWS::Lambda::Url")
    assert url["AuthType"] == "NONE"
    esm = next(v["Properties"] for v in res.values() if v["Type"] == "AWS::Lambda::EventSourceMapping")
    assert esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert esm["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "WorkerMaxConcurrency"}}
    schedules = [v["Properties"] for v in res.values() if v["Type"] == "AWS::Scheduler::Schedule"]
    assert sorted(s["Target"]["Input"] for s in schedules) == ['{"mode":"delta"}', '{"mode":"full"}']
    for s in schedules:
        assert s["Target"]["RetryPolicy"]["MaximumRetryAttempts"] >= 1
        assert "DeadLetterConfig" in s["Target"]
        assert s["ScheduleExpressionTimezone"] == {"Ref": "ScheduleTimeZone"}
    metrics = {v["Properties"]["MetricName"] for v in res.values() if v["Type"] == "AWS::CloudWatch::Alarm"}
    assert {"ReconcileCompleted", "OpenCriticalExceptions", "RateBudgetExhausted", "Errors",
            "ApproximateNumberOfMessagesVisible"} <= metrics
    # No function writes to a log group the template does not define with a retention.
    groups = {k for k, v in res.items() if v["Type"] == "AWS::Logs::LogGroup"}
    assert all(v["Properties"].get("RetentionInDays") for k, v in res.items() if k in groups)
    for props in functions.values():
        assert props["LoggingConfig"]["LogGroup"]["Ref"] in groups


def _role(statements, **extra):
    return {"Type": "AWS::IAM::Role", "Properties": {
        "Policies": [{"PolicyName": "p", "PolicyDocument": {"Statement": statements}}], **extra}}


def test_iam_rule_catches_wildcards_managed_policies_and_not_action():
    ok = {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": {"Fn::GetAtt": ["Q", "Arn"]}}
    assert check.iam_problems({"Resources": {"R": _role([ok])}}) == []
    cases = {
        "wildcard action": {**ok, "Action": ["dynamodb:*"]},
        "unscoped resource": {**ok, "Resource": "*"},
        "NotAction": {"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:s3:::b"},
        "no Resource": {"Effect": "Allow", "Action": "sqs:SendMessage"},
    }
    for says, statement in cases.items():
        found = check.iam_problems({"Resources": {"R": _role([statement])}})
        assert any(says in p for p in found), (says, found)
    managed = _role([ok], ManagedPolicyArns=["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"])
    assert any("managed policies" in p for p in check.iam_problems({"Resources": {"R": managed}}))


def test_iam_rule_catches_what_sam_adds_when_a_function_has_no_role(template):
    # Without an explicit Role, SAM generates one with AWSLambdaBasicExecutionRole (and, for an
    # SQS event, AWSLambdaSQSQueueExecutionRole): both grant on "*".
    tpl = copy.deepcopy(template)
    del tpl["Resources"]["SyncWorkerFunction"]["Properties"]["Role"]
    found = check.iam_problems(check.expand(tpl))
    assert any("SyncWorkerFunctionRole: managed policies" in p for p in found), found


def test_visibility_rule_needs_six_times_the_worker_timeout(template):
    tpl = copy.deepcopy(template)
    tpl["Parameters"]["WorkerTimeoutSeconds"]["Default"] = 61  # 6 x 61 = 366 > 360
    assert any("QueueVisibilityTimeoutSeconds 360 < 6 x WorkerTimeoutSeconds 61" in p
               for p in check.visibility_problems(tpl))


@pytest.mark.skipif(not check.WORKER_SETTINGS_RS.exists(), reason="the sync worker's settings are not written yet")
def test_requeue_rule_keeps_worker_retries_out_of_the_dlq(template):
    assert check.requeue_problems(template) == []
    tpl = copy.deepcopy(template)
    tpl["Parameters"]["MaxReceiveCount"]["Default"] = 3
    assert any("not below MaxReceiveCount 3" in p for p in check.requeue_problems(tpl))
    # Below, but with too few spare receives for unanswered ones (crashes, throttles, lost deletes).
    tpl["Parameters"]["WorkerSettings"]["Default"] = '{"requeue_at_receive_count": 2}'
    assert any("fewer than 5 receives" in p for p in check.requeue_problems(tpl))
    tpl["Parameters"]["MaxReceiveCount"]["Default"] = 7
    assert check.requeue_problems(tpl) == []
    tpl["Parameters"]["WorkerSettings"]["Default"] = ""
    tpl["Parameters"]["MaxReceiveCount"]["Default"] = 8
    assert any("fewer than 5 receives" in p for p in check.requeue_problems(tpl))


def test_agreement_rule_catches_a_wrong_binary_and_a_missing_variable(template):
    tpl = copy.deepcopy(template)
    tpl["Resources"]["IntakeFunction"]["Metadata"]["BuildProperties"]["Binary"] = "intake-v2"
    del tpl["Globals"]["Function"]["Environment"]["Variables"]["ORGLINK_RUNS_TABLE"]
    found = check.agreement_problems(tpl)
    assert any("Binary 'intake-v2'" in p for p in found), found
    assert sum("ORGLINK_RUNS_TABLE" in p for p in found) == 3, found
