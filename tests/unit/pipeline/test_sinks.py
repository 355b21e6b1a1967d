"""The sink's delivery rules, against a producer double that fails on demand (no broker needed)."""

from __future__ import annotations

from typing import Any

import pytest
from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError, NotLeaderForPartitionError

from pipeline.config import load_settings
from pipeline.schema import Origin, Rejected
from pipeline.sinks import DeliveryError, KafkaSink, encode_json, record_bytes


class Future:
    def __init__(self, error: Exception | None = None, done: bool = True) -> None:
        self.is_done = done
        self.exception = error

    def failed(self) -> bool:
        return self.exception is not None


class Producer:
    """Records sends; ``plan`` maps a value to what happens to it."""

    def __init__(self, plan: dict[bytes, Any] | None = None) -> None:
        self.plan = plan or {}
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def send(self, topic: str, **kwargs: Any) -> Future:
        outcome = self.plan.get(kwargs.get("value") or b"")
        if isinstance(outcome, type) and issubclass(outcome, Exception):
            raise outcome("refused at send")
        self.sent.append((topic, kwargs))
        return outcome if isinstance(outcome, Future) else Future()

    def flush(self, timeout: float | None = None) -> None:
        pass


def sink(plan: dict[bytes, Any] | None = None, **settings: Any) -> tuple[KafkaSink, Producer]:
    producer = Producer(plan)
    return KafkaSink(load_settings(**settings), producer=producer), producer  # type: ignore[arg-type]


def test_a_record_the_broker_refuses_is_reported_alone_and_the_rest_delivered() -> None:
    s, _ = sink({b"big": Future(MessageSizeTooLargeError("too big")), b"huge": MessageSizeTooLargeError})
    s.scored("a", b"ok", tag="a")
    s.scored("b", b"big", tag="b")
    s.scored("c", b"huge", tag="c")
    failures = s.flush()
    assert sorted(f.tag for f in failures) == ["b", "c"]
    assert s.flush() == [], "reported once"


def test_a_transient_failure_is_never_forgotten_by_a_later_flush() -> None:
    s, _ = sink({b"lost": Future(NotLeaderForPartitionError("moved"))})
    s.scored("a", b"lost", tag="a")
    with pytest.raises(DeliveryError):
        s.flush()
    with pytest.raises(DeliveryError):
        s.flush()  # a retry must not commit past the undelivered record
    s.forget()  # the caller drops the work and re-reads it
    assert s.flush() == []


def test_a_send_that_times_out_is_a_delivery_error_not_a_crash() -> None:
    s, _ = sink({b"x": KafkaTimeoutError})
    s.scored("a", b"x")
    with pytest.raises(DeliveryError):
        s.flush()


def test_an_unfinished_send_blocks_the_commit() -> None:
    s, _ = sink({b"slow": Future(done=False)})
    s.scored("a", b"slow")
    with pytest.raises(DeliveryError, match="1 records not delivered"):
        s.flush()


def test_dead_letters_keep_the_original_bytes_or_say_they_were_cut() -> None:
    s, producer = sink(broker_max_message_bytes=4096)
    origin = Origin("news", 3, 42)
    s.dead_letter(Rejected(b"\xff\xfe not utf-8", "not_utf8", "byte 0", origin))
    huge = b"x" * 5000
    s.dead_letter(Rejected(huge, "too_large", "big", origin))
    s.dead_letter(Rejected(None, "not_json", "tombstone", origin))  # no key, no value
    assert s.flush() == []
    (_, first), (_, second), (_, third) = producer.sent
    assert first["value"] == b"\xff\xfe not utf-8"
    headers = dict(first["headers"])
    assert headers["finsent-error"] == b"not_utf8" and headers["finsent-source-offset"] == b"42"
    assert "finsent-truncated-from" not in headers
    assert huge.startswith(second["value"]) and len(second["value"]) > 3500, "as much as fits"
    assert record_bytes(second["key"], second["value"], second["headers"]) <= 4096, "headers and framing included"
    assert dict(second["headers"])["finsent-truncated-from"] == str(len(huge)).encode()
    assert third["value"] == b"" and dict(third["headers"])["finsent-error"] == b"not_json"


def test_a_dead_letter_the_broker_refused_goes_again_as_a_short_copy_without_its_key() -> None:
    s, producer = sink()
    rejected = Rejected(b"y" * 5000, "not_json", "x", Origin("news", 0, 7, None, b"k" * 2000))
    s.dead_letter(rejected, last_resort=True)
    ((_, copy),) = producer.sent
    assert copy["key"] is None and copy["value"] == b"y" * 1000
    assert dict(copy["headers"])["finsent-truncated-from"] == b"5000"


def test_outputs_are_sized_with_their_key_and_headers() -> None:
    s, _ = sink(broker_max_message_bytes=4096)
    assert s.fits(b"id", b"v" * 4000)
    assert not s.fits(b"id", b"v" * 4000, [("h", b"w" * 100)])
    assert not s.fits(b"k" * 100, b"v" * 4000)
    assert not s.alert("alert-x", {"ids": ["z" * 5000]}), "an alert that cannot fit is not sent"


def test_output_json_is_strict() -> None:
    assert encode_json({"a": "é", "b": [1, 2]}) == '{"a":"é","b":[1,2]}'.encode()
    with pytest.raises(ValueError):
        encode_json({"x": float("nan")})
