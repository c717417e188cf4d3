"""Printing tables as aligned text, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

import pyarrow as pa


def render(table: pa.Table, fmt: str, columns: list[str] | None = None) -> str:
    rows = table.to_pylist()
    columns = columns or table.column_names
    if fmt == "json":
        return json.dumps([{c: _json_value(r.get(c)) for c in columns} for r in rows], indent=2)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[r.get(c) for c in columns] for r in rows])
        return out.getvalue().rstrip("\n")
    cells = [[_text(r.get(c)) for c in columns] for r in rows]
    headers = [c.removeprefix("config/") for c in columns]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += [
        "  ".join(
            v.rjust(w) if _numeric(v) else v.ljust(w) for v, w in zip(row, widths, strict=True)
        )
        for row in cells
    ]
    return "\n".join(line.rstrip() for line in lines)


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
