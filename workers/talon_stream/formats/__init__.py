"""How input records become events: canonical JSON (:func:`talon_stream.core.decode_event`), a
shop's own documents through a mapping file (:mod:`talon_stream.formats.mapping`), and Avro in the
Confluent wire format (:mod:`talon_stream.formats.avro`); :class:`Decoder` chooses per topic."""

from talon_stream.formats._decoder import Decoder

__all__ = ["Decoder"]
