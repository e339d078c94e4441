"""The core's rows, framework-free: a stream built at a saved position continues with the next row,
and every epoch packs the same examples in a new order."""

from __future__ import annotations

from localft.data.chat_tokens import TokenizedExample
from localft.train.rows import RowStream


def test_row_stream_resumes_at_its_position():
    examples = [TokenizedExample(list(range(i + 2)), list(range(i + 2))) for i in range(7)]
    stream = lambda position=0: RowStream(examples, 8, packing=True, seed=3, position=position)  # noqa: E731
    full = stream().take(30)
    head, tail = stream().take(13), stream(13).take(17)
    assert [r.input_ids for r in head + tail] == [r.input_ids for r in full]
    per_epoch = stream().rows_per_epoch
    first, second = full[:per_epoch], full[per_epoch : 2 * per_epoch]
    assert all(len(r) <= 8 for r in full)
    assert sum(len(r) for r in first) == sum(len(r) for r in second) == sum(range(2, 9))
    assert [r.input_ids for r in first] != [r.input_ids for r in second]
