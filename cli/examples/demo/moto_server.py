"""moto_server for `make demo`, with moto's DynamoDB value comparisons made cheap.

moto answers a Query on a global secondary index by sorting every item of the table and
comparing each one in Python (`Table.all_items`, `DynamoType.__eq__`/`__lt__`, each going
through `cast_value`); with the demo's 2,000 accounts that is most of moto's CPU time, and moto
is most of the demo's. The patches below keep moto's results exactly (same order, same
equality) and only take shorter paths:
- strings compare as strings (moto casts them to themselves first);
- `all_items` sorts by each item's cast key values computed once, not by pairwise comparisons
  (the same order: `DynamoType.__lt__` is `cast_value <`, and a table's key types are fixed).
Everything else is moto's own `moto_server` (`moto.server.main`), arguments unchanged.
"""

from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.server import main

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


DynamoType.__eq__ = _fast_eq
DynamoType.__ne__ = _fast_ne
DynamoType.__lt__ = _fast_lt
Table.all_items = _all_items

if __name__ == "__main__":
    main()
