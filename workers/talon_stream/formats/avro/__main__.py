"""``python -m talon_stream.formats.avro [--release]``: the backward compatibility check of the
schemas
(:func:`talon_stream.formats.avro._compat.main`)."""

import sys

from talon_stream.formats.avro._compat import main

sys.exit(main())
