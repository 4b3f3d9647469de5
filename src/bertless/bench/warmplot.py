"""The paper's argument for the user's own model: a month's bill against requests per month.

One line per cloud and option (on demand, SnapStart, warm capacity), both axes on a log scale,
with the always-on VM as a flat line: where a line crosses it, the function stops being cheaper.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from bertless.bench.cost import DEFAULT_VM, HOURS_PER_MONTH
from bertless.bench.warm import (
    WARM_CLOUDS,
    Traffic,
    cold_start_words,
    month,
    options_for,
    traffic_for,
)
from bertless.platforms import limits

COLOURS = {"aws": "tab:orange", "gcp": "tab:blue", "azure": "tab:green"}
STYLES = ("-", "--", ":")  # on demand, then the options in the order options_for gives them


def requests_axis(low: float = 1e4, high: float = 1e9, points: int = 61) -> list[float]:
    """Requests per month, evenly spaced on a log scale from `low` to `high`."""
    step = (high / low) ** (1 / (points - 1))
    return [low * step**index for index in range(points)]


def plot_months(
    traffic: Traffic,
    out: Path,
    warm_instances: int = 1,
    arch: str = "x86_64",
    vm: str = DEFAULT_VM,
    requests: list[float] | None = None,
    cpu_boost: bool = False,
) -> Path:
    """Draw every cloud's options over `requests` (default 10 thousand to 1 billion) to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    xs = requests or requests_axis()
    figure, axes = plt.subplots(figsize=(10, 6.5), constrained_layout=True)
    for cloud in WARM_CLOUDS:
        options = options_for(cloud, warm_instances, cpu_boost)
        for option, style in zip(options, STYLES, strict=False):
            try:
                rows = [
                    month(
                        cloud,
                        option,
                        replace(traffic_for(cloud, traffic), requests_per_month=x),
                        arch,
                    )
                    for x in xs
                ]
            except limits.OutOfRangeError:
                continue  # the table says why
            name = f"{limits.get_platform(cloud).name}: {rows[0].option}"
            axes.plot(xs, [row.total for row in rows], style, color=COLOURS[cloud], label=name)
    vm_monthly = limits.get_vm(vm).usd_per_hour * HOURS_PER_MONTH
    axes.axhline(vm_monthly, color="black", linewidth=2, label=f"always-on {vm}")
    axes.set(
        title=f"A month's bill: {traffic.duration_ms:g} ms warm, {traffic.cold_start_ms:g} ms cold "
        f"start for {cold_start_words(traffic)}, {traffic.memory_mb} MB (no free tier)",
        xlabel="requests per month (log scale)",
        ylabel="US dollars a month (log scale)",
        xscale="log",
        yscale="log",
    )
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize="small")
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return Path(out)
