"""Which (method chain, format, device) combinations can be built and run, and why not."""

from __future__ import annotations

from harness.formats import FORMATS
from harness.methods import METHODS, precision_of, traits_of_steps


def model_reason(steps, facts, model: str) -> str | None:
    """Why these steps cannot transform this model whatever the format: a model-level
    method needs a torch module, and each method says which models it serves."""
    for step in steps:
        entry = METHODS[step.kind]
        if entry.level != "model" or entry.identity:
            continue
        if facts.kind != "module":
            return (f"{step.kind} transforms a torch module; model '{model}' is a model "
                    f"file (format-level methods only)")
        reason = entry.applies(facts)
        if reason:
            return f"{step.kind}: {reason} (model '{model}')"
    return None


def skip_reason(steps, fmt: str, device: str, facts=None) -> str | None:
    plugin = FORMATS.get(fmt)
    if plugin is None:
        return (f"format '{fmt}' is not implemented in this version "
                f"(available: {', '.join(FORMATS)})")
    if device not in plugin.devices:
        return (f"format '{fmt}' runs on {plugin.runtime}, which has no agent runtime on "
                f"{device} (runs on: {', '.join(plugin.devices)})")
    missing = plugin.unavailable()
    if missing:
        return f"format '{fmt}': {missing}"
    if facts is not None:
        reason = plugin.supports_model(facts)
        if reason:
            return reason
    format_steps = [s for s in steps if METHODS[s.kind].level == "format"]
    if len(format_steps) > 1:
        return "a chain can hold at most one format-level quantization step"
    if format_steps and steps[-1] is not format_steps[0]:
        return "the format-level quantization step must be the last step of a chain"
    for step in steps:
        entry = METHODS[step.kind]
        reason = (entry.check(step) or plugin.reduce_range_reason(step)
                  or (plugin.supports(step) if entry.level == "format" else None))
        if reason:
            return reason
    reason = plugin.supports_traits(traits_of_steps(steps))
    return reason or plugin.runs_on(device, precision_of(steps))
