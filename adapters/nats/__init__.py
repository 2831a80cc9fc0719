"""NATS JetStream: a durable pull consumer that records each message's facts, and a publisher.

- :mod:`adapters.nats.jetstream` connects and makes sure the stream and the consumer exist;
- :mod:`adapters.nats.messages` turns one message into pipeline items (facts or rejects);
- :mod:`adapters.nats.consumer` fetches batches, records each in one ledger transaction, and
  acknowledges the messages only after that commit;
- :mod:`adapters.nats.publisher` publishes canonical JSONL lines as messages (for tests, demos
  and back-fills), with a ``Nats-Msg-Id`` per fact for the server's de-duplication.

See docs/streaming.md.
"""
