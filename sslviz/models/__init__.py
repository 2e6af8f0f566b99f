"""Encoders and their checkpoints.

encoders     the encoder registry (small-cnn, resnet18) behind one Encoder interface:
             ``embed_dim``, feature maps by named layer, pooled embedding
checkpoint   save/load with ``torch.load(..., weights_only=True)``, RNG state, orphan cleanup
"""
