"""PNG plots for the report: training curves, the style fingerprints side by side, confusion matrices."""

from __future__ import annotations

from pathlib import Path

from localft.eval.fingerprint import FUNCTION_WORDS, SCALE_FLOOR, Fingerprint
from localft.events import Eval, Step, read_events


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: never open a window, work without a display
    import matplotlib.pyplot as plt

    return plt


def plot_training_curves(events_path: Path, out: Path) -> Path | None:
    """Train loss per step and validation loss per evaluation; None when no step was logged."""
    events = read_events(events_path)
    steps = {e.step: e.loss for e in events if isinstance(e, Step)}  # a resumed run repeats steps
    evals = {e.step: e.val_loss for e in events if isinstance(e, Eval)}
    if not steps:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    xs = sorted(steps)
    ax.plot(xs, [steps[s] for s in xs], label="train loss", color="#4c72b0", linewidth=1.2)
    if evals:
        vx = sorted(evals)
        ax.plot(vx, [evals[s] for s in vx], "o-", label="validation loss", color="#dd8452")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("Training curves")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def plot_fingerprints(fingerprints: dict[str, Fingerprint], out: Path, reference: str = "real") -> Path:
    """Each feature as a ratio to the reference posts (1.0 = the same), one bar per source;
    a second panel compares the most frequent function words."""
    plt = _pyplot()
    ref = fingerprints[reference]
    names = list(fingerprints)
    features = list(SCALE_FLOOR)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5), dpi=100)
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        fp = fingerprints[name]
        ratios = [
            fp.means[k] / ref.means[k] if ref.means[k] else (1.0 if fp.means[k] == 0 else 2.0)
            for k in features
        ]
        ax1.bar([x + i * width for x in range(len(features))], ratios, width, label=name)
    ax1.axhline(1.0, color="grey", linewidth=0.8)
    ax1.set_xticks([x + width * (len(names) - 1) / 2 for x in range(len(features))])
    ax1.set_xticklabels([k.replace("_", " ") for k in features], rotation=35, ha="right", fontsize=8)
    ax1.set_ylabel(f"ratio to {reference} posts")
    ax1.set_title("Style features")
    ax1.legend()

    top = sorted(FUNCTION_WORDS, key=lambda w: -ref.function_words.get(w, 0.0))[:12]
    for i, name in enumerate(names):
        shares = [fingerprints[name].function_words.get(w, 0.0) for w in top]
        ax2.bar([x + i * width for x in range(len(top))], shares, width, label=name)
    ax2.set_xticks([x + width * (len(names) - 1) / 2 for x in range(len(top))])
    ax2.set_xticklabels(top, rotation=35, ha="right", fontsize=8)
    ax2.set_ylabel("share of function words")
    ax2.set_title("Top function words")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def plot_confusions(labels: list[str], results: dict[str, dict], out: Path) -> Path:
    """One confusion matrix per model side by side (rows: true label, columns: the answer), counts written in."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(results), figsize=(5.2 * len(results), 4.6), dpi=100, squeeze=False)
    for ax, (title, scores) in zip(axes[0], results.items(), strict=True):
        matrix, cols = scores["confusion"], scores["columns"]
        ax.imshow(matrix, cmap="Blues", vmin=0)
        top = max((n for row in matrix for n in row), default=0)
        for i, row in enumerate(matrix):
            for j, n in enumerate(row):
                ax.text(j, i, str(n), ha="center", va="center", color="white" if n > top / 2 else "black")
        ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.set_xlabel("answered")
        ax.set_ylabel("true label")
        ax.set_title(
            f"{title}: accuracy {scores['accuracy']:.2f}, macro-F1 {scores['macro_f1']:.2f}", fontsize=9
        )
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out
