"""Latency quantiles and cost against memory size, every target in one figure (PNG).

Left: client-side q50 (solid), q95 (dashed) and q99 (dotted) per target. Right: the price of a
million requests on each cloud at that target's measured q50, one colour per target and one
marker per cloud. Memory is on a log scale because the settings double.
"""

from __future__ import annotations

from pathlib import Path

from bertless.bench.cost import CLOUDS
from bertless.bench.report import BenchReport

QUANTILES = (("q50", "-"), ("q95", "--"), ("q99", ":"))
MARKERS = dict(zip(CLOUDS, "osD^", strict=True))


def plot(report: BenchReport, out: Path) -> Path:
    """Draw the report to `out` with the Agg backend (no display needed); return the path."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 6), constrained_layout=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, target in enumerate(report.targets):
        colour = colours[index % len(colours)]
        name = f"{Path(target.target).name} ({target.kind})"
        runs = [run for run in target.runs if run.latency.client_ms is not None]
        memory = [run.emulation.memory_mb for run in runs]
        for quantile, style in QUANTILES:
            values = [getattr(run.latency.client_ms, quantile) for run in runs]
            label = f"{name}: {quantile}" if quantile == "q50" else None
            left.plot(memory, values, style, marker="o", color=colour, label=label)
        for cloud in CLOUDS:
            points = [
                (run.emulation.memory_mb, row.breakdown.total_per_million)
                for run in runs
                for row in run.cost
                if row.cloud == cloud and row.breakdown is not None
            ]
            if points:
                xs, ys = zip(*points, strict=True)
                right.plot(xs, ys, marker=MARKERS[cloud], color=colour, label=f"{name}: {cloud}")
    left.set(
        title="Latency (client; solid q50, dashed q95, dotted q99)",
        xlabel="memory (MB)",
        ylabel="ms",
        xscale="log",
    )
    right.set(
        title="Cost per million requests at the measured q50",
        xlabel="memory (MB)",
        ylabel="US dollars (log scale)",
        xscale="log",
        yscale="log",
    )
    for axes in (left, right):
        sizes = sorted({run.emulation.memory_mb for t in report.targets for run in t.runs})
        axes.set_xticks(sizes, [str(size) for size in sizes])
        axes.minorticks_off()
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.12))
    load = report.machine.get("load_average", [None])[0]
    figure.suptitle(
        f"bertless bench: {report.machine.get('cpus')} CPUs, load {load:.1f}"
        if load is not None
        else "bertless bench"
    )
    figure.savefig(out, dpi=120)
    plt.close(figure)
    return Path(out)
