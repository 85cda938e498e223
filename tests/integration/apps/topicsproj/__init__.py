"""A Django Channels project whose consumer uses bayleaf.topics: the same code
runs natively under Bayleaf and on Channels groups under Daphne, uvicorn and
WebsocketCommunicator (tests/integration/topics/test_topics_channels.py)."""
