"""moto_server for every test, bench and `make demo` (tests/harness starts it), with moto's
DynamoDB value comparisons made cheap.

moto answers a Query on a global secondary index by sorting every item of the table and
comparing each one in Python (`Table.all_items`, `DynamoType.__eq__`/`__lt__`, each going
through `cast_value`); with the demo's 2,000 accounts that is most of moto's CPU time, and moto
is most of the demo's and of the end-to-end suites'. The patches below keep moto's results exactly (same order, same
equality) and only take shorter paths:
- strings compare as strings (moto casts them to themselves first);
- `all_items` sorts by each item's cast key values computed once, not by pairwise comparisons
  (the same order: `DynamoType.__lt__` is `cast_value <`, and a table's key types are fixed).
Everything else is moto's own `moto_server` (`moto.server.main`), arguments unchanged.
`ORGLINK_MOTO_AS_IS=1` (or the older `ORGLINK_DEMO_MOTO_AS_IS=1`) leaves moto's comparisons as they are (to measure the difference).

It also counts requests by operation (`DynamoDB.Query`, `SQS.ReceiveMessage`, ...) with the CPU
time moto spent on each, served as JSON on `GET /_demo/requests`: the demo prints them by stage.
"""

import json
import os
import threading
import time

from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.server import main

# operation -> [requests, CPU seconds of the thread that served them]
_counts = {}
_counts_lock = threading.Lock()
_services = {"DynamoDB_20120810": "DynamoDB", "AmazonSQS": "SQS", "secretsmanager": "SecretsManager"}
_dispatch = DomainDispatcherApplication.__call__


def _operation(environ):
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    service, _, action = target.partition(".")
    if not action:
        return "other"
    return f"{_services.get(service, service)}.{action}"


def _counting_dispatch(self, environ, start_response):
    if environ.get("PATH_INFO") == "/_demo/requests":
        with _counts_lock:
            body = json.dumps(_counts).encode()
        start_response(
            "200 OK",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]
    operation = _operation(environ)
    started = time.thread_time()
    try:
        return _dispatch(self, environ, start_response)
    finally:
        spent = time.thread_time() - started
        with _counts_lock:
            entry = _counts.setdefault(operation, [0, 0.0])
            entry[0] += 1
            entry[1] += spent


DomainDispatcherApplication.__call__ = _counting_dispatch

_eq, _ne, _lt = DynamoType.__eq__, DynamoType.__ne__, DynamoType.__lt__


def _fast_eq(self, other):
    if self.type == "S" and other.type == "S":
        return self.value == other.value
    return _eq(self, other)


def _fast_ne(self, other):
    if self.type == "S" and other.type == "S":
        return self.value != other.value
    return _ne(self, other)


def _fast_lt(self, other):
    if self.type == "S" and other.type == "S":
        return self.value < other.value
    return _lt(self, other)


def _all_items(self):
    items = []
    for hash_set in self.items.values():
        if self.range_key_attr:
            items.extend(hash_set.values())
        else:
            items.append(hash_set)
    return sorted(
        items,
        key=lambda x: (x.hash_key.cast_value, x.range_key.cast_value)
        if x.range_key
        else x.hash_key.cast_value,
    )


if "1" not in (os.environ.get("ORGLINK_MOTO_AS_IS"), os.environ.get("ORGLINK_DEMO_MOTO_AS_IS")):
    DynamoType.__eq__ = _fast_eq
    DynamoType.__ne__ = _fast_ne
    DynamoType.__lt__ = _fast_lt
    Table.all_items = _all_items

if __name__ == "__main__":
    main()
