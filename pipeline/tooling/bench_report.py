"""The text ``finsent bench`` prints: one block per build, its latency curve, live capacity and profile."""

from __future__ import annotations

from typing import Any


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} ms"


def render_profile(profile: dict[str, Any], tokeniser_ms: float | None) -> list[str]:
    """The loop's time per stage (share of its wall time, ms per text) and the workers' model time."""
    lines = []
    shares, per_text = profile["loop_share"], profile["loop_ms_per_text"]
    if shares.get("fetch") is None:
        lines.append("    loop stages:   not timed by this build (no finsent_stage_seconds)")
    else:
        parts = [f"{k} {shares[k]:.0%} ({_ms(per_text[k])}/text)" for k in shares]
        lines.append("    loop stages:   " + ", ".join(parts) + "  (fetch includes idle waits)")
    lat = profile.get("latency_ms") or {}
    if lat.get("event_to_scored") is not None:
        total = lat["event_to_scored"]
        parts = [f"{k} {_ms(lat[k])}" for k in ("read", "model", "waiting")]
        lines.append(f"    a text's time: mean {total:.1f} ms event -> scored = " + " + ".join(parts))
    model = profile.get("model_ms_per_text")
    if model is not None:
        tok = "" if tokeniser_ms is None else f", of which tokenising ~{tokeniser_ms:.2f} ms (tokeniser alone)"
        batch = profile.get("mean_batch_size")
        passes = profile.get("company_passes_per_text")
        if passes:
            tok += f"; {passes:.2f} extra passes a text for the companies of multi-company texts"
        lines.append(
            f"    workers:       model {model:.2f} ms/text{tok}; mean batch {batch:.1f}"
            if batch
            else f"    workers:       model {model:.2f} ms/text{tok}"
        )
    cores = profile.get("cores_busy") or {}
    if any(v is not None for v in cores.values()):
        parts = [f"{k.replace('_', ' ')} {v:.2f}" for k, v in cores.items() if v is not None]
        lines.append(
            "    cores busy:    " + ", ".join(parts) + "  (while the texts arrived; the broker and the load "
            "generator share the machine with the daemon)"
        )
    return lines


def render_ceiling(ceiling: dict[str, Any] | None) -> list[str]:
    """Where the machine's cores run out, at what a text cost in CPU at the capacity's rate."""
    if not ceiling:
        return []
    return [
        f"    CPU a text:    daemon {ceiling['daemon_cpu_ms_per_text']:.2f} ms, test broker and load generator "
        f"{ceiling['rig_cpu_ms_per_text']:.2f} ms",
        f"    CPU ceiling:   {ceiling['cpus']} cores all busy at {ceiling['ceiling_texts_per_s']:.0f} texts/s "
        f"({ceiling['ceiling_share']:.0%} of the backlog throughput) with the broker and load generator beside the "
        f"daemon, {ceiling['ceiling_without_rig_texts_per_s']:.0f} texts/s "
        f"({ceiling['ceiling_without_rig_share']:.0%}) for the daemon alone; no rate near either holds a p99",
    ]


def render(report: dict[str, Any]) -> str:
    out = [
        f"machine:      {report['cpu']}, {report['cpus']} cores; load average {report['load_average_at_start']} "
        f"at the start, {report['load_average_at_end']} at the end",
        f"model alone:  {report['model_alone_texts_per_s']:.0f} texts/s ({report['scoring_workers']} workers x "
        f"{report['threads']} threads); tokeniser alone {report['tokeniser_ms_per_text']:.3f} ms/text",
        f"fetches:      fetch_max_wait_ms {report['fetch_max_wait_ms']}: the test broker holds every fetch that "
        "long even when data is there, so 'fetch' below is mostly the broker's wait, not the daemon's work",
    ]
    for name, build in report["builds"].items():
        layout = f", {build['scoring_workers']} workers x {build['threads']} threads" if "threads" in build else ""
        out.append(f"{name} build {build['commit']} (imports from {build['imports_from']}{layout}):")
        out.append(
            f"  backlog:      {build['end_to_end_texts_per_s']:.0f} texts/s end to end "
            f"({build['end_to_end_vs_model_alone']:.0%} of the model alone), peak RSS {build['peak_rss_mb']:.0f} MB"
        )
        lat = build.get("latency")
        if not lat:
            continue
        for step in lat["curve"]:
            out.append(
                f"  {step['share']:6.1%} {step['rate_per_s']:6.0f}/s: p50 {step['p50_ms']:5.0f} ms, "
                f"p95 {step['p95_ms']:5.0f} ms, p99 {step['p99_ms']:5.0f} ms"
                f"{'' if step['holds'] else '   > target'}"
            )
        bound = "at least " if lat.get("live_capacity_is_lower_bound") else ""
        out.append(
            f"  live capacity: {bound}{lat['live_capacity_share']:.0%} of the backlog throughput "
            f"({lat['live_capacity_texts_per_s']:.0f} texts/s) at p99 <= {lat['target_p99_ms']:.0f} ms"
        )
        out.append("  profile at that rate (the lowest rate when none held):")
        out += render_profile(lat["profile_at_capacity"], report.get("tokeniser_ms_per_text"))
        out += render_ceiling(lat.get("cpu_ceiling"))
    hf = report.get("hf_pipeline", {})
    if "bs1_texts_per_s" in hf:
        out.append(
            f"HF pipeline:  {hf['bs1_texts_per_s']:.0f} texts/s (default, batch 1), {hf['bs32_texts_per_s']:.0f} "
            f"texts/s (batch 32); the new build end to end is {report['speedup_vs_hf_pipeline_default']:.1f}x the "
            f"default and {report['speedup_vs_hf_pipeline_bs32']:.1f}x the batch-32 pipeline"
        )
    elif hf:
        out.append(f"HF pipeline:  skipped ({hf.get('skipped')})")
    return "\n".join(out)
