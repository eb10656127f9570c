"""Builds the optional C accelerator of the miner (crm_core/mining/_fastmine.c); everything else is in pyproject.toml.

``optional=True``: where there is no C compiler the build only warns, the package installs without the
extension, and crm_core.mining runs on its numpy engine (same results, slower).
"""

import sys

from setuptools import Extension, setup

# -ffp-contract=off: the rule thresholds compare products of counts exactly as numpy does, which a fused
# multiply-add would round differently.
FLAGS = [] if sys.platform == "win32" else ["-ffp-contract=off"]

setup(
    ext_modules=[
        Extension(
            "crm_core.mining._fastmine",
            ["crm_core/mining/_fastmine.c"],
            extra_compile_args=FLAGS,
            optional=True,
        )
    ]
)
