"""Checks that tests/harness/moto/moto_server.py's shortcuts leave moto's answers unchanged: the same
queries (table and global secondary index, string/number/binary keys, both directions,
conditions, filters, pages) and scans against the same items, once with moto as it is and once
patched; prints `same N` (N items compared) or `DIFFERENT ...` and exits 1.
Run by `cargo test -p orglink-harness --test moto_shortcuts` with the project's .venv Python."""

import importlib.util
import os
import random
import sys

import boto3
from moto import mock_aws

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")


def answers():
    r = random.Random(7)
    out = []
    with mock_aws():
        c = boto3.client("dynamodb", region_name="us-east-1")
        attrs = [("pk", "S"), ("sk", "N"), ("g", "S"), ("gr", "S"), ("b", "B"), ("n", "N")]
        c.create_table(
            TableName="t",
            AttributeDefinitions=[{"AttributeName": a, "AttributeType": t} for a, t in attrs],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by-g",
                    "KeySchema": [
                        {"AttributeName": "g", "KeyType": "HASH"},
                        {"AttributeName": "gr", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                },
                {
                    "IndexName": "by-b",
                    "KeySchema": [{"AttributeName": "b", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                },
                {
                    "IndexName": "by-n",
                    "KeySchema": [{"AttributeName": "n", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                },
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        for _ in range(600):
            sk = r.choice([str(r.randint(-5, 500)), f"{r.random() * 10:.3f}", "1.0", "1"])
            item = {
                "pk": {"S": f"p{r.randint(0, 40)}"},
                "sk": {"N": sk},
                "g": {"S": r.choice(["a.com", "b.com", "A.com", "a.co", "é.de", "ab"])},
                "gr": {"S": r.choice(["a", "b", "ab", "B", "x" * r.randint(1, 3)])},
                "n": {"N": r.choice(["1", "1.0", "2", "-3", "10"])},
            }
            if r.random() < 0.5:
                item["b"] = {"B": bytes([r.randint(0, 3)])}
            c.put_item(TableName="t", Item=item)
        for g in ["a.com", "b.com", "A.com", "é.de", "ab", "none"]:
            for forward in (True, False):
                out.append(c.query(TableName="t", IndexName="by-g", ScanIndexForward=forward,
                                   KeyConditionExpression="g = :g",
                                   ExpressionAttributeValues={":g": {"S": g}})["Items"])
            out.append(c.query(TableName="t", IndexName="by-g",
                               KeyConditionExpression="g = :g AND gr > :r",
                               ExpressionAttributeValues={":g": {"S": g}, ":r": {"S": "ab"}})["Items"])
        for b in range(4):
            out.append(c.query(TableName="t", IndexName="by-b", KeyConditionExpression="b = :b",
                               ExpressionAttributeValues={":b": {"B": bytes([b])}})["Items"])
        for n in ["1", "1.00", "2", "-3"]:
            out.append(c.query(TableName="t", IndexName="by-n", KeyConditionExpression="n = :n",
                               ExpressionAttributeValues={":n": {"N": n}})["Items"])
        for p in range(0, 41, 4):
            out.append(c.query(TableName="t", KeyConditionExpression="pk = :p AND sk >= :s",
                               ExpressionAttributeValues={":p": {"S": f"p{p}"}, ":s": {"N": "1"}})["Items"])
        out.append(c.scan(TableName="t", FilterExpression="n = :n",
                          ExpressionAttributeValues={":n": {"N": "1"}})["Items"])
        start = None
        for _ in range(100):  # 600 items in pages of 37; a broken order could page forever
            kw = {"ExclusiveStartKey": start} if start else {}
            page = c.scan(TableName="t", Limit=37, **kw)
            out.append(page["Items"])
            start = page.get("LastEvaluatedKey")
            if not start:
                break
    return out


def main():
    as_is = answers()
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location("demo_moto", os.path.join(here, "moto_server.py"))
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    patched = answers()
    n = sum(len(a) for a in as_is)
    if as_is != patched:
        diff = next(i for i, (a, b) in enumerate(zip(as_is, patched)) if a != b)
        print(f"DIFFERENT: answer {diff} of {len(as_is)}")
        sys.exit(1)
    print(f"same {n}")


main()
