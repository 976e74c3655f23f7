"""The build engine: run the stale images of a plan, concurrently and resumably.

:mod:`~assetbuild.engine.builder` drives each image (cache, resume, submit, poll,
download, lock); :mod:`~assetbuild.engine.submits` decides what may still be sent and
sends it so that no paid task is lost; :mod:`~assetbuild.engine.watch` polls tasks to
their end; :mod:`~assetbuild.engine.results` puts results in place and records them;
:mod:`assetbuild.lockflush` writes the lockfile now and then.
"""

from assetbuild.engine.builder import BuildContext, Builder
from assetbuild.engine.submits import STOP_GRACE, Submitter
from assetbuild.errors import ImageFailed

__all__ = ["STOP_GRACE", "BuildContext", "Builder", "ImageFailed", "Submitter"]
