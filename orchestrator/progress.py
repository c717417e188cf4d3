"""The live progress line of long commands on stderr: sweeps (trials), eval (shards) and grids
(cells) each compose its text; this module shows it with the elapsed time and an ETA."""

from __future__ import annotations

import sys
import time


def clock(seconds: float) -> str:
    """``m:ss`` or ``h:mm:ss``, for elapsed times and ETAs."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class StatusLine:
    """``<text> · 1:05 · ETA ~2:10`` on stderr.

    Rewritten in place on a terminal, at most once a second but for the final line; on a pipe,
    a new line whenever the text changes and, with ``pipe_final``, always for the final line
    (a sweep leaves its end to the summary after it). Holds no handles, so a Tune callback
    owning one can be pickled with the experiment.
    """

    def __init__(self, pipe_final: bool = True) -> None:
        self.pipe_final = pipe_final
        self.started = time.monotonic()
        self._last_text = ""
        self._last_print = 0.0

    def show(self, text: str, *, done: int, remaining: int, final: bool = False) -> None:
        """Print ``text`` with the elapsed time and, while some work is ``done`` and some
        ``remaining``, an ETA at the pace so far."""
        now = time.monotonic()
        if not final and now - self._last_print < 1.0:
            return
        elapsed = now - self.started
        line = f"{text} · {clock(elapsed)}"
        if not final and done > 0 and remaining > 0:
            line += f" · ETA ~{clock(elapsed / done * remaining)}"
        if sys.stderr.isatty():
            sys.stderr.write("\r\033[K" + line + ("\n" if final else ""))
        elif text != self._last_text or (final and self.pipe_final):
            sys.stderr.write(line + "\n")
        sys.stderr.flush()
        self._last_text, self._last_print = text, now
