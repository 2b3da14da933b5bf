"""Input record → event, by topic: Avro in the Confluent wire format, a shop's own document
through the mapping file, or the canonical JSON envelope."""

from __future__ import annotations

from typing import TYPE_CHECKING

from talon_stream._exceptions import RecordTooLargeError
from talon_stream.core._events import Event, decode_event
from talon_stream.core._records import InputRecord
from talon_stream.formats.mapping._mappings import Mappings

if TYPE_CHECKING:  # the Avro side loads the Schema Registry client: only when a topic is Avro
    from talon_stream.formats.avro.formats import AvroFormats

__all__ = ["Decoder"]


class Decoder:
    """Decodes the records of every input topic. ``mappings`` (the mapping file) and ``avro``
    (the Avro topics' decoders) are ``None`` when no topic needs them."""

    def __init__(
        self,
        *,
        max_record_bytes: int = 512 * 1024,
        mappings: Mappings | None = None,
        avro: AvroFormats | None = None,
    ) -> None:
        self.max_record_bytes = max_record_bytes
        self._mappings = mappings
        self._avro = avro

    def decode(self, record: InputRecord) -> Event:
        """The event ``record`` carries.

        Raises:
            RecordTooLargeError: the value is larger than ``max_record_bytes``; it was not read.
            DecodeError: not a valid event (or Avro datum) of its topic's format.
            MappingError: a mapped topic's document that no rule of the mapping file maps.
        """
        size = len(record.value or b"")
        if size > self.max_record_bytes:
            raise RecordTooLargeError(
                f"the record value has {size} bytes, more than max_record_bytes "
                f"({self.max_record_bytes}); it was not read"
            )
        mappings = self._mappings
        avro = self._avro
        if avro is not None and record.topic in avro.input_topics:
            if mappings is not None and record.topic in mappings.topics:
                return mappings.apply(record.topic, avro.read_document(record.value))
            return avro.decode_event(record.value)
        if mappings is not None and record.topic in mappings.topics:
            return mappings.decode(record.topic, record.value)
        return decode_event(record.value)
