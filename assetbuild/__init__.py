"""assetbuild: make for AI-generated images.

The library API lives in :mod:`assetbuild.project` (load, plan),
:mod:`assetbuild.build` (build, pull) and :mod:`assetbuild.outcomes` (their options
and reports); this module stays light so that the CLI starts fast.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
