"""``python -m workers.avro [--release]``: the backward compatibility check of the schemas
(:func:`workers.avro.compat.main`)."""

import sys

from workers.avro.compat import main

sys.exit(main())
