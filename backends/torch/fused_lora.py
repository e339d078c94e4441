"""A peft LoRA linear layer whose update is added inside one GEMM (addmm with alpha = scale).

peft computes `base(x) + lora_B(lora_A(x)) * scale`: two extra full-width passes (the multiply and
the add) per adapted layer, forward and backward. On a CPU, where those passes are memory-bound,
they cost ~15% of a step. Parameter names and the saved adapter are peft's own."""

from __future__ import annotations


def fused_linear_class():
    import torch
    from peft.tuners.lora.layer import Linear as LoraLinear

    class FusedLoraLinear(LoraLinear):
        def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
            active = [a for a in self.active_adapters if a in self.lora_A]
            plain = (
                len(active) == 1
                and not self.disable_adapters
                and not self.merged
                and not kwargs
                and not args
                and active[0] not in self.lora_variant  # DoRA and friends keep peft's path
            )
            if not plain:
                return super().forward(x, *args, **kwargs)
            name = active[0]
            lora_a, lora_b = self.lora_A[name], self.lora_B[name]
            h = lora_a(self.lora_dropout[name](self._cast_input_dtype(x, lora_a.weight.dtype)))
            y = self.base_layer(x)
            out = torch.addmm(
                y.reshape(-1, y.shape[-1]),
                h.reshape(-1, h.shape[-1]).to(y.dtype),
                lora_b.weight.t().to(y.dtype),
                alpha=self.scaling[name],
            )
            return out.view(y.shape)

    return FusedLoraLinear


def register_fused_lora(config) -> None:
    """Make peft build FusedLoraLinear for plain nn.Linear targets (not 4-bit or 8-bit ones)."""
    config._register_custom_module({_ExactLinear: fused_linear_class()})


class _ExactLinearMeta(type):
    def __instancecheck__(cls, obj) -> bool:
        import torch

        return type(obj) is torch.nn.Linear


class _ExactLinear(metaclass=_ExactLinearMeta):
    """isinstance(m, _ExactLinear) is true only for a plain torch.nn.Linear."""
