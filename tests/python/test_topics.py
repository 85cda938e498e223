"""bayleaf.topics outside a server: group names valid for Channels, argument
checks, and the fallback publish through a real InMemoryChannelLayer."""

import asyncio

import pytest

from bayleaf import topics


def channels_valid(name):
    from channels.layers import BaseChannelLayer
    return BaseChannelLayer().valid_group_name(name)


@pytest.mark.parametrize("topic", ["ticker.BTC-USD", "a", "x" * 80, "x" * 81, "prix/€ été", "a b", "ü" * 200])
def test_group_names_are_valid_and_distinct(topic):
    name = topics.group_name(topic)
    assert channels_valid(name) and len(name) < 100
    assert name == topics.group_name(topic)


def test_group_names_do_not_collide():
    names = {topics.group_name(t) for t in ["a", "A", "a.b", "a b", "a/b", "h.a", "bayleaf.topich.x"]}
    assert len(names) == 7


@pytest.mark.parametrize("kw,exc", [({}, ValueError), ({"text": "a", "bytes": b"b"}, ValueError),
                                    ({"text": b"a"}, TypeError), ({"bytes": "a"}, TypeError)])
def test_publish_needs_one_payload(kw, exc):
    with pytest.raises(exc):
        topics.publish("t", **kw)


@pytest.mark.parametrize("topic,exc", [("", ValueError), (None, TypeError), (b"t", TypeError)])
def test_topic_must_be_a_non_empty_str(topic, exc):
    with pytest.raises(exc):
        topics.group_name(topic)


def test_fallback_publish_reaches_the_group(monkeypatch):
    from channels.layers import InMemoryChannelLayer
    layer = InMemoryChannelLayer()
    monkeypatch.setattr(topics, "_fallback_layer", lambda: layer)

    async def go():
        ch = await layer.new_channel()
        await layer.group_add(topics.group_name("t.x"), ch)
        await topics.apublish("t.x", text="hello")
        topics.publish("t.x", bytes=b"\x01")  # on a running loop: a task
        first = await asyncio.wait_for(layer.receive(ch), 5)
        second = await asyncio.wait_for(layer.receive(ch), 5)
        return first, second

    first, second = asyncio.run(go())
    assert first == {"type": "bayleaf.topic.message", "topic": "t.x", "text": "hello"}
    assert second == {"type": "bayleaf.topic.message", "topic": "t.x", "bytes": b"\x01"}
