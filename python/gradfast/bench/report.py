"""The human-readable tables of a bench report."""

from __future__ import annotations

from .registry import KERNELS

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


def _roofline(r: dict) -> str:
    if r["in_cache"]:
        return "in cache"
    if r["roofline_fraction"] is None:
        return "-"
    return "noise" if r["roofline_noise"] else f"{r['roofline_fraction']:.0%}"


def _spread(r: dict) -> str:
    x = r["spread"]
    return f"{x:.{2 if x < 10 else 0}f}" + (" noisy" if r["noisy"] else "")


def _bandwidth_line(report: dict) -> str:
    bw, cache = report["bandwidth"], report["machine"]["cache_bytes"]
    if bw is None:
        return "roofline: not measured (no kernel of this run declares its memory traffic)"
    return (
        f"roofline = the bytes a call must move (declared by each kernel) at the memory bandwidth measured "
        f"at the start, {bw['limit'] / 1e9:.1f} GB/s (copy {bw['copy'] / 1e9:.1f}, triad {bw['triad'] / 1e9:.1f}, "
        f"write-allocate counted), / gradfast time (100% = memory speed); 'in cache' where a pass fits in the "
        f"{cache / 2**20:.0f} MiB cache; 'noise' above {report['roofline_noise_above']:.0%}"
    )


def format_report(report: dict) -> str:
    """A header, then one table per kernel; the torch columns appear when torch ran."""
    m = report["machine"]
    rows = report["rows"]
    with_torch = any(r["torch_s"] is not None for r in rows)
    header = ["size", "dtype", "numpy", "gradfast", "speedup"]
    if with_torch:
        header += ["torch", "vs torch"]
    header += ["roofline", "spread"]
    peer = f", torch {m['torch']}" if with_torch else '; no torch column (pip install "gradfast[bench]")'
    sizes = " at the --quick sizes" if report["quick"] else ""
    lines = [
        f"gradfast {m['gradfast']} bench{sizes} on {m['cpu']}: {m['cpu_count']} CPUs, "
        f"{m['gradfast_threads']} gradfast threads, numpy {m['numpy']}{peer}; best of {report['repeat']} runs",
        "speedup = numpy time / gradfast time"
        + ("; vs torch = torch time / gradfast time (same threads)" if with_torch else ""),
        _bandwidth_line(report),
        f"spread = slowest / fastest run, the worst of the row's columns; 'noisy' above "
        f"{report['noisy_factor']:.2f}: the machine was busy, do not trust that row's ratios",
    ]
    for name in dict.fromkeys(r["kernel"] for r in rows):
        table = [header]
        for r in (r for r in rows if r["kernel"] == name):
            cells = [r["label"], r["dtype"], _fmt_time(r["numpy_s"]), _fmt_time(r["gradfast_s"]), _ratio(r["speedup"])]
            if with_torch:
                cells += [_fmt_time(r["torch_s"]), _ratio(r["speedup_vs_torch"])]
            cells += [_roofline(r), _spread(r)]
            table.append(cells)
        widths = [max(len(cells[i]) for cells in table) for i in range(len(header))]
        lines += ["", f"{name}: {KERNELS[name].title}"]
        for cells in table:
            left = [c.ljust(w) for c, w in zip(cells[:2], widths)]
            right = [c.rjust(w) for c, w in zip(cells[2:-1], widths[2:-1])]
            lines.append("  " + "  ".join(left + right + [cells[-1].ljust(widths[-1])]).rstrip())
    return "\n".join(lines) + "\n"
