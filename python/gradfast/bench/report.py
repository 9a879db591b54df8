"""The human-readable tables of a bench report."""

from __future__ import annotations

from .registry import KERNELS, LARGE

_UNITS = (("s", 1.0), ("ms", 1e-3), ("us", 1e-6))


def _fmt_time(seconds: float | None) -> str:
    """Three significant digits in the largest unit that keeps the value >= 1."""
    if seconds is None:
        return "-"
    unit, scale = next((u for u in _UNITS if seconds >= u[1]), _UNITS[-1])
    v = seconds / scale
    return f"{v:.{2 if v < 10 else 1 if v < 100 else 0}f} {unit}"


def _ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def format_report(report: dict) -> str:
    """A header, then one table per kernel; the torch columns appear when torch ran."""
    m = report["machine"]
    rows = report["rows"]
    with_torch = any(r["torch_s"] is not None for r in rows)
    header = ["size", "dtype", "numpy", "gradfast", "speedup"]
    if with_torch:
        header += ["torch", "vs torch"]
    header.append("roofline")
    peer = f", torch {m['torch']}" if with_torch else ""
    lines = [
        f"gradfast {m['gradfast']} bench on {m['cpu']}: {m['cpu_count']} CPUs, "
        f"{m['gradfast_threads']} gradfast threads, numpy {m['numpy']}{peer}; best of {report['repeat']} runs",
        "speedup = numpy time / gradfast time"
        + ("; vs torch = torch time / gradfast time (same threads)" if with_torch else ""),
        f"roofline = time of bandwidth_probe moving the same bytes / gradfast time (100% = memory speed), "
        f"for cases of >= {LARGE:,} elements",
    ]
    for name in dict.fromkeys(r["kernel"] for r in rows):
        table = [header]
        for r in (r for r in rows if r["kernel"] == name):
            cells = [r["label"], r["dtype"], _fmt_time(r["numpy_s"]), _fmt_time(r["gradfast_s"]), _ratio(r["speedup"])]
            if with_torch:
                cells += [_fmt_time(r["torch_s"]), _ratio(r["speedup_vs_torch"])]
            fraction = r["roofline_fraction"]
            cells.append("-" if fraction is None else f"{fraction:.0%}")
            table.append(cells)
        widths = [max(len(cells[i]) for cells in table) for i in range(len(header))]
        lines += ["", f"{name}: {KERNELS[name].title}"]
        for cells in table:
            left = [c.ljust(w) for c, w in zip(cells[:2], widths)]
            right = [c.rjust(w) for c, w in zip(cells[2:], widths[2:])]
            lines.append("  " + "  ".join(left + right))
    return "\n".join(lines) + "\n"
