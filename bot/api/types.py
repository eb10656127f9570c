"""Types shared by the API's parameters and bodies.

``Id``: a row id as clients send it (path, query or body). Bounded to what every id column holds
(a 32-bit integer), so a made-up id of 20 digits is a 422 or a 404, never a database overflow.
"""

from __future__ import annotations

from typing import Annotated

import annotated_types

MAX_ID = 2**31 - 1

Id = Annotated[int, annotated_types.Interval(ge=1, le=MAX_ID)]
