"""A second real KurrentDB client against `lifeline serve`: the Python `kurrentdbclient`
(pinned in requirements.txt). Single events go through Append, lists through BatchAppend,
as that client does; then reads, filters, subscriptions with checkpoints, metadata, delete,
tombstone, Gossip and the persistent-subscription listing it calls when tidying up.

Usage: python kurrentdb_client_check.py kurrentdb://127.0.0.1:PORT?Tls=false
Exits 0 when every check holds; prints what failed otherwise.
"""

import json
import sys
import uuid

from kurrentdbclient import KurrentDBClient, NewEvent, StreamState
from kurrentdbclient.exceptions import (
    FailedPreconditionError,
    NotFoundError,
    StreamIsDeletedError,
    WrongCurrentVersionError,
)

checks = 0


def check(condition, what):
    global checks
    if not condition:
        raise AssertionError(what)
    checks += 1


def event(kind, n):
    return NewEvent(type=kind, data=json.dumps({"n": n}).encode())


def main(uri):
    client = KurrentDBClient(uri=uri)
    # Names of this run only, so that the checks hold on a ledger that has other events.
    run = uuid.uuid4().hex[:8]
    stream = f"py{run}-orders"
    opened, paid, noise = f"Opened{run}", f"Paid{run}", f"Noise{run}"

    first = event(opened, 0)
    position = client.append_to_stream(stream, events=first, current_version=StreamState.NO_STREAM)
    check(position > 0, "an append returns its commit position")
    again = client.append_to_stream(stream, events=first, current_version=StreamState.NO_STREAM)
    check(again == position, f"a retry of the same event returns the original position ({again} != {position})")
    try:
        client.append_to_stream(stream, events=event(opened, 9), current_version=StreamState.NO_STREAM)
        check(False, "a different event expecting no stream is refused")
    except WrongCurrentVersionError:
        check(True, "wrong expected version")

    batch = client.append_to_stream(stream, events=[event(paid, 1), event(paid, 2)], current_version=0)
    check(batch > position, "a batch append lands after the first")
    recorded = client.get_stream(stream)
    check([e.stream_position for e in recorded] == [0, 1, 2], f"revisions 0..2, got {[e.stream_position for e in recorded]}")
    check([json.loads(e.data)["n"] for e in recorded] == [0, 1, 2], "the data comes back")
    check(all(e.commit_position == e.prepare_position > 0 for e in recorded), "positions: commit = prepare > 0")
    check(recorded[-1].commit_position == batch, "the last event is at the batch's position")
    check(client.get_commit_position() == batch, "the last commit position")
    backwards = client.get_stream(stream, backwards=True, limit=2)
    check([e.stream_position for e in backwards] == [2, 1], "backwards with a limit")

    client.append_to_stream(f"other{run}", events=event(noise, 0), current_version=StreamState.ANY)
    only_py = list(client.read_all(filter_include=[f"py{run}-"], filter_by_stream_name=True, filter_by_prefix=True))
    check({e.stream_name for e in only_py} == {stream} and len(only_py) == 3, "a stream-name prefix filter")
    by_type = list(client.read_all(filter_include=[paid]))
    check([e.type for e in by_type] == [paid, paid], "an event-type filter (regex, anchored by the client)")
    excluded = list(client.read_all(filter_exclude=[opened, paid]))
    types = {e.type for e in excluded}
    check(noise in types and not types & {opened, paid}, "an exclude filter (negative look-ahead)")

    sub = client.subscribe_to_stream(stream, include_caught_up=True)
    got = []
    for e in sub:
        if e.type == "CaughtUp" or e.stream_name == "" or e.stream_position is None:
            break
        got.append(e.stream_position)
        if len(got) == 3:
            break
    sub.stop()
    check(got == [0, 1, 2], f"a stream subscription from the start, got {got}")
    sub_all = client.subscribe_to_all(commit_position=position, filter_include=[paid])
    next_ones = []
    for e in sub_all:
        next_ones.append(e.stream_position)
        if len(next_ones) == 2:
            break
    sub_all.stop()
    check(next_ones == [1, 2], f"a filtered $all subscription after a position, got {next_ones}")

    client.set_stream_metadata(stream, metadata={"$maxAge": 86400, "owner": "ops"})
    metadata, version = client.get_stream_metadata(stream)
    check(metadata.get("owner") == "ops" and version == 0, f"stream metadata round trip: {metadata}, {version}")

    client.delete_stream(stream, current_version=2)
    try:
        client.get_stream(stream)
        check(False, "a deleted stream reads as not found")
    except NotFoundError:
        check(True, "deleted")
    client.append_to_stream(stream, events=event(opened, 3), current_version=StreamState.NO_STREAM)
    check([e.stream_position for e in client.get_stream(stream)] == [3], "after a delete, the stream continues")

    client.tombstone_stream(stream, current_version=StreamState.ANY)
    try:
        client.append_to_stream(stream, events=event(opened, 4), current_version=StreamState.ANY)
        check(False, "a tombstoned stream takes no more events")
    except FailedPreconditionError as e:
        check("is deleted" in str(e), f"an append to a tombstoned stream says so: {e}")
    try:
        client.get_stream(stream)
        check(False, "a tombstoned stream reads as deleted")
    except StreamIsDeletedError:
        check(True, "tombstoned")

    members = client.read_gossip()
    check(len(members) == 1 and members[0].state == "NODE_STATE_LEADER", f"one leader in gossip: {members}")
    try:
        listed = client.list_subscriptions()
        check(list(listed) == [], "no persistent subscriptions")
    except NotFoundError:
        check(True, "no persistent subscriptions")
    client.close()
    print(f"python kurrentdbclient: {checks} checks passed")


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except AssertionError as e:
        print(f"python kurrentdbclient: check failed after {checks} passed: {e}", file=sys.stderr)
        sys.exit(1)
