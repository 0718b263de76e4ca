"""Fused Triton kernels, each with the PyTorch reference it is tested against (DESIGN rule 7).

- ``linear.linear_act``: Linear + bias + activation (matmul by cuBLAS, Triton epilogue).
- ``epilogue.affine_act``: per-channel scale/shift (conv bias, folded BatchNorm) +
  residual + activation after a convolution (by cuDNN), or after an Add.
- ``loss.cross_entropy``: softmax + cross-entropy, gradient computed in the forward pass.
- ``fuse.fuse_graph_module``: swaps those patterns into a compiled graph
  (``compile_graph(..., kernels="on"|"auto"|"off")``); ``policy`` says where "auto" may.

No optimizer kernel: see README "Fused kernels" (torch's ``fused=True`` optimizers already
update every parameter in a few multi-tensor launches; a Triton one has nothing to win).

Importing this package imports no Triton; ``triton_kernels`` is imported when a kernel
first runs. Without a GPU, Triton runs on CPU tensors only with ``TRITON_INTERPRET=1``
set before that import.
"""

from .runtime import CPU_ENV, MODES, interpreting, runs_triton, triton_available

__all__ = ["CPU_ENV", "MODES", "interpreting", "runs_triton", "triton_available"]
