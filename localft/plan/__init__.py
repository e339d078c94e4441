"""The machine and the plan: hardware, memory estimate, model catalog and shapes, plan()."""
