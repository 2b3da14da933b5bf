"""Declarative mappings: a shop's own JSON documents → the canonical event envelope
(``docs/mapping.md``)."""

from talon_stream.formats.mapping._mappings import (
    MappingFile,
    Mappings,
    load_mappings,
    parse_mappings,
)

__all__ = ["MappingFile", "Mappings", "load_mappings", "parse_mappings"]
