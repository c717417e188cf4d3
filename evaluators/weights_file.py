"""PyTorch files read safely: tensors and plain Python values only, problems in one line.

``torch.load`` unpickles; a pickled object can name any callable and run it while loading. Every
file ganorch reads (trial checkpoints, judge caches, Inception weights) goes through
:func:`load_weights`, which uses torch's restricted unpickler and refuses anything else.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

_FORBIDDEN = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")
_DETAIL = "WeightsUnpickler error:"


class RefusedFile(ValueError):
    """A file that holds Python objects besides tensors and plain values; it is never loaded."""


def load_weights(path: str | Path, map_location: Any = "cpu", what: str = "PyTorch file") -> Any:
    """``torch.load(path, weights_only=True)``: tensors, numbers, strings, None and containers.

    Raises :class:`RefusedFile` naming the file and the object it would have built, ValueError
    (``{path}: not a readable {what} (...)``) for anything else that fails, OSError as is.
    """
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except OSError:
        raise
    except Exception as exc:  # noqa: BLE001 - zip, pickle and tensor errors all mean unreadable
        text = str(exc)
        forbidden = _FORBIDDEN.search(text)
        if forbidden:
            raise RefusedFile(
                f"{path}: refused: it holds a Python object ({forbidden[1]}), "
                "not only tensors and plain values"
            ) from None
        raise ValueError(f"{path}: not a readable {what} ({_reason(exc)})") from None


def _reason(exc: Exception) -> str:
    """The gist of a loading error in one short line, without torch's hints on unsafe loading."""
    text = str(exc)
    if _DETAIL in text:
        text = text.split(_DETAIL, 1)[1].split("Check the documentation", 1)[0]
    elif "weights_only" in text:
        text = "unexpected content"
    return " ".join(text.split())[:200] or type(exc).__name__
