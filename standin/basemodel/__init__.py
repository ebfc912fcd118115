"""The stand-in base model: real pre-trained MiniLM text tower + a small ViT trained here (LiT).

``build_base_model(out_dir)`` builds it offline and reproducibly; ``python -m
standin.basemodel.build --out DIR`` is the command-line form.
"""

from standin.basemodel.builder import build_base_model

__all__ = ["build_base_model"]
