"""What "keeps the fp32 source's quality" means in SQL, in one place (the summary, the
report and `harness recommend` read it). A labelled metric (top-1) may drop by at most the
budget in points against the fp32 source; a fidelity metric (cosine to the fp32 outputs)
must reach the threshold of the row's precision, stored with the row."""

DROP_PTS = ("CASE WHEN quality_threshold IS NULL "
            "THEN 100 * (reference_quality - quality) END")


def within_budget(budget: str = "$budget") -> str:
    return (f"(quality IS NOT NULL AND CASE WHEN quality_threshold IS NULL "
            f"THEN 100 * (reference_quality - quality) <= {budget} "
            f"ELSE quality >= quality_threshold END)")
