"""Imported at start-up by the Python processes of a test that puts this folder first on PYTHONPATH
and sets LOCALFT_TEST_PAUSE=KIND:STEP:FLAG (tests/training.py `pause_env`). The real worker then
stops itself (SIGSTOP) right after recording the Step or Checkpoint event of STEP, once, while the
file FLAG exists: the test acts at that exact step however fast or slow the machine is."""

import os

_SPEC = os.environ.get("LOCALFT_TEST_PAUSE")
if _SPEC:
    import signal

    from localft import events

    _kind, _step, _flag = _SPEC.split(":", 2)
    _event_type = {"step": events.Step, "checkpoint": events.Checkpoint}[_kind]
    _record = events.EventSink.__call__

    def _record_then_pause(sink, event):
        _record(sink, event)
        if isinstance(event, _event_type) and event.step == int(_step) and os.path.exists(_flag):
            os.remove(_flag)
            os.kill(os.getpid(), signal.SIGSTOP)

    events.EventSink.__call__ = _record_then_pause
