"""Type aliases, enums and constants shared by every module."""

from __future__ import annotations

from typing import Any, Final, Literal

JSON = Any
"""A value that survives ``json.dumps``: dict, list, str, int, float, bool or None."""

Status = Literal[
    "up-to-date", "new", "changed", "missing-output", "modified-output", "upstream-changed",
    "more-takes", "pick", "reroll",
]
"""``pick`` and ``reroll`` are asked for by their commands; a plan never finds them."""
Action = Literal["none", "build", "restore"]
TaskState = Literal["pending", "succeeded", "failed"]

ASPECT_RATIOS: Final[tuple[str, ...]] = ("auto", "1:1", "9:16", "16:9", "4:3", "3:4")
RESOLUTIONS: Final[tuple[str, ...]] = ("1K", "2K", "4K")
PROVIDERS: Final[tuple[str, ...]] = ("see2ai", "emulator")

IMAGE_ACTION: Final = "see2ai_image_generation_v1"
UPLOAD_ACTION: Final = "see2ai_storage_upload_v1"
MAX_PROMPT_CHARS: Final = 20_000
DEFAULT_BASE_URL: Final = "https://see2ai.com"
STATE_DIR_NAME: Final = ".assetbuild"

MAX_UPLOAD_BYTES: Final = 50 * 1024 * 1024
"""The platform's upload limit (its upload client script): larger files answer 413."""
