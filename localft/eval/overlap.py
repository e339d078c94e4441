"""Overlap with the real replies for generation tasks: ROUGE-L (rouge-score) and BLEU (sacrebleu)."""

from __future__ import annotations


def overlap_scores(generated: list[str], references: list[str]) -> dict[str, float]:
    """Mean ROUGE-L F1 over the pairs (0-1) and corpus BLEU (0-100) of `generated` against `references`."""
    import sacrebleu
    from rouge_score import rouge_scorer

    if not generated:
        return {"rouge_l": 0.0, "bleu": 0.0}
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    rouge = [
        scorer.score(ref, gen)["rougeL"].fmeasure for gen, ref in zip(generated, references, strict=True)
    ]
    bleu = sacrebleu.corpus_bleu(generated, [references]).score
    return {"rouge_l": sum(rouge) / len(rouge), "bleu": float(bleu)}
