"""Topics under Bayleaf (the bayleaf.topics extension): subscribe, unsubscribe,
close, retained values, ordering, publishing from the loop, a thread and a sync
function, invalid extension messages. Real sockets, the real server."""

import json
import threading

import pytest

from harness import bayleaf_only

from .conftest import APP
from .topics_support import TopicsClient, publish, seq_of

pytestmark = bayleaf_only


def test_scope_announces_the_extension(topics_server):
    with TopicsClient(topics_server) as c:
        assert "bayleaf.topics" in c.ctl(op="ext")["ext"]


def test_subscriber_receives_what_is_published(topics_server):
    with TopicsClient(topics_server, "/ws?topics=t.basic") as a, TopicsClient(topics_server) as b:
        assert b.ctl(op="sub", topics=["t.basic", "t.other"])["ok"]
        publish(topics_server, "t.basic", n=3)
        assert [a.next_text() for _ in range(3)] == ["0:xxxxxx", "1:xxxxxx", "2:xxxxxx"]
        assert [b.next_text() for _ in range(3)] == ["0:xxxxxx", "1:xxxxxx", "2:xxxxxx"]


def test_binary_publish_arrives_as_binary(topics_server):
    with TopicsClient(topics_server, "/ws?topics=t.bin") as a:
        a.ctl(op="publish", topic="t.bin", hex="00ff10")
        assert a.next_message() == (0x2, b"\x00\xff\x10")


def test_unsubscribe_stops_delivery(topics_server):
    with TopicsClient(topics_server, "/ws?topics=t.un,t.mark") as a:
        assert a.ctl(op="unsub", topics=["t.un"])["ok"]
        publish(topics_server, "t.un", n=2)
        publish(topics_server, "t.mark", n=1)
        # Published after t.un's messages: had those come, they would be first.
        assert a.next_text() == "0:xxxxxx"
        assert a.messages == []


def test_unsubscribing_an_unknown_topic_is_harmless(topics_server):
    with TopicsClient(topics_server) as a:
        assert a.ctl(op="unsub", topics=["never.subscribed"])["ok"]
        assert a.ctl(op="sub", topics=["t.x"])["ok"]


def test_closing_unsubscribes(topics_server):
    # Many subscribers come and go; the survivors still get every message and
    # the registry frees the leavers (ASan runs of this test catch a use after free).
    leavers = [TopicsClient(topics_server, "/ws?topics=t.close") for _ in range(20)]
    with TopicsClient(topics_server, "/ws?topics=t.close") as stay:
        stay.ctl(op="ext")
        for c in leavers:
            c.ctl(op="ext")  # subscribed (the command came after the subscribe)
        for c in leavers[:10]:
            c.ws.send_close(1000)
            c.ws.expect_close()
        for c in leavers[10:]:
            c.close()  # without a close frame
        publish(topics_server, "t.close", n=50)
        assert [seq_of(stay.next_text()) for _ in range(50)] == list(range(50))
    topics_server.assert_serving("/hello")


def test_subscribing_twice_delivers_once(topics_server):
    with TopicsClient(topics_server, "/ws?topics=t.twice") as a:
        a.ctl(op="sub", topics=["t.twice", "t.twice"])
        publish(topics_server, "t.twice", n=1)
        publish(topics_server, "t.twice.mark", n=0)
        a.ctl(op="sub", topics=["t.twice.mark"])
        publish(topics_server, "t.twice.mark", n=1)
        assert a.next_text() == "0:xxxxxx"
        assert a.next_text() == "0:xxxxxx"  # the mark: no second copy of t.twice's
        assert a.messages == []


def test_retained_value_reaches_a_new_subscriber_at_once(topics_server):
    publish(topics_server, "t.ret", n=3, retain=True)  # the last one, "2:", is kept
    publish(topics_server, "t.ret", n=1, size=12)  # not retained: the value stays
    with TopicsClient(topics_server) as a:
        assert a.ctl(op="sub", topics=["t.ret"])["ok"]
        assert a.next_text() == "2:xxxxxx"
    with TopicsClient(topics_server, "/ws?topics=t.ret") as b:
        assert b.next_text() == "2:xxxxxx"
        publish(topics_server, "t.ret", n=1, size=4, retain=True)
        assert b.next_text() == "0:xx"
    with TopicsClient(topics_server, "/ws?topics=t.ret") as c:
        assert c.next_text() == "0:xx"


@pytest.mark.parametrize("via", ["loop", "thread", "sync"])
def test_order_per_topic_is_publish_order(topics_server, via):
    topic = f"t.order.{via}"
    with TopicsClient(topics_server, f"/ws?topics={topic}") as a, \
            TopicsClient(topics_server, f"/ws?topics={topic}") as b:
        a.ctl(op="ext")
        b.ctl(op="ext")
        publish(topics_server, topic, n=2000, size=40, via=via)
        for c in (a, b):
            assert [seq_of(c.next_text()) for _ in range(2000)] == list(range(2000))


def test_publishers_in_many_threads_keep_each_ones_order(topics_server):
    clients = [TopicsClient(topics_server, f"/ws?topics=t.mt.{i}") for i in range(4)]
    try:
        for c in clients:
            c.ctl(op="ext")
        threads = [threading.Thread(target=publish, args=(topics_server, f"t.mt.{i}"),
                                    kwargs={"n": 300, "via": "thread"}) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for c in clients:
            assert [seq_of(c.next_text()) for _ in range(300)] == list(range(300))
    finally:
        for c in clients:
            c.close()


@pytest.mark.parametrize("msg,exc,words", [
    ({"type": "bayleaf.subscribe"}, "TypeError", "list of str"),
    ({"type": "bayleaf.subscribe", "topics": "t.a"}, "TypeError", "list of str"),
    ({"type": "bayleaf.subscribe", "topics": [1]}, "TypeError", "must be a str"),
    ({"type": "bayleaf.subscribe", "topics": []}, "ValueError", "empty"),
    ({"type": "bayleaf.subscribe", "topics": [""]}, "ValueError", "1 to 256 bytes"),
    ({"type": "bayleaf.subscribe", "topics": ["x" * 257]}, "ValueError", "1 to 256 bytes"),
    ({"type": "bayleaf.subscribe", "topics": ["a\u0000b"]}, "ValueError", "without NUL"),
    ({"type": "bayleaf.subscribe", "topics": ["t.a"], "conflate": 1}, "TypeError", "bool"),
    ({"type": "bayleaf.unsubscribe", "topics": ["t.a"], "conflate": True}, "ValueError", "no 'conflate'"),
    ({"type": "bayleaf.unsubscribe", "topics": None}, "TypeError", "list of str"),
])
def test_invalid_extension_messages_raise_in_send(topics_server, msg, exc, words):
    with TopicsClient(topics_server) as a:
        r = a.ctl(op="send", msg=msg)
        assert r.get("error") == exc and words in r["message"], r
        assert a.ctl(op="sub", topics=["t.after.error"])["ok"]  # the connection goes on


def test_topic_names_are_any_utf8(topics_server):
    name = "prix.\u20ac/\u00e9t\u00e9 \u2603"
    with TopicsClient(topics_server) as a:
        assert a.ctl(op="sub", topics=[name])["ok"]
        assert a.ctl(op="publish", topic=name, text="caf\u00e9")["ok"]
        assert a.next_text() == "caf\u00e9"


def test_limits_per_connection_close_with_1008(start_server):
    server = start_server(APP, "--topics-per-connection", "3")
    with TopicsClient(server) as a:
        assert a.ctl(op="sub", topics=["l.1", "l.2", "l.3"])["ok"]
        a.ws.send_text(json.dumps({"op": "sub", "topics": ["l.4"]}))
        f = a.ws.expect_close()
        assert f.close_code == 1008, f
    server.wait_for_text(r"over --topics-per-connection \(3\): closing it with 1008")
    server.assert_serving("/hello")


def test_limit_on_name_length_follows_the_flag(start_server):
    server = start_server(APP, "--topics-name-max", "8")
    with TopicsClient(server) as a:
        r = a.ctl(op="sub", topics=["123456789"])
        assert r.get("error") == "ValueError" and "1 to 8 bytes" in r["message"], r
        r = a.ctl(op="publish", topic="123456789", text="x")
        assert r.get("error") == "ValueError", r
        assert a.ctl(op="sub", topics=["12345678"])["ok"]


def test_retained_bytes_are_bounded(start_server):
    server = start_server(APP, "--topics-retained-bytes", "1000")
    publish(server, "r.small", n=1, size=500, retain=True)
    publish(server, "r.big", n=1, size=700, retain=True)  # 500 + 700 > 1000: not kept
    server.wait_for_text(r"--topics-retained-bytes \(1000\): topic r\.big keeps none")
    with TopicsClient(server) as a:
        a.ctl(op="sub", topics=["r.big", "r.small"])
        assert seq_of(a.next_text()) == 0 and len(a.messages) == 0  # r.small's alone
        a.ctl(op="sub", topics=["r.mark"])
        a.ctl(op="publish", topic="r.mark", text="mark")
        assert a.next_text() == "mark"
