"""Training and validation loss over steps, drawn with plotext."""

from __future__ import annotations

from textual_plotext import PlotextPlot


class LossChart(PlotextPlot):
    """Holds every point it is given; redraws at most once per refresh, however many arrive."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.train: list[tuple[int, float]] = []
        self.val: list[tuple[int, float]] = []

    def set_points(self, train: list[tuple[int, float]], val: list[tuple[int, float]]) -> None:
        self.train, self.val = list(train), list(val)
        self.refresh()

    def render(self):
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title("loss")
        plt.xlabel("step")
        if self.train:
            xs, ys = zip(*self.train, strict=True)
            plt.plot(list(xs), list(ys), label="train", marker="braille")
        if self.val:
            xs, ys = zip(*self.val, strict=True)
            plt.plot(list(xs), list(ys), label="valid", marker="dot")
        if not (self.train or self.val):
            plt.text("waiting for the first step", x=0.5, y=0.5)
            plt.xlim(0, 1)
            plt.ylim(0, 1)
        return super().render()
