"""sslviz: self-supervised pretext training, embeddings and few-shot labels for unlabeled images.

The library does all the work and never imports streamlit (only ``sslviz.ui`` and ``pages/`` do).
"""

__version__ = "0.1.0"
