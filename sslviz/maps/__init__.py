"""Embeddings of a dataset and the maps drawn from them (DESIGN 3.5, 3.7).

embed             embeddings from a run's encoder, ``random`` or ``pixels``; cached per checkpoint
settings          MapSettings: source, layer, grid and the UMAP parameters of one map
project           UMAP maps (PCA first, numba cache in the workspace), cached
cached_arrays     the .npy + .json cache both keep per dataset: load, publish, drop stale ones
quality           label-free (effective rank) and kNN-agreement figures of an embedding
neighbour_checks  data checks off one kNN graph: near-duplicates, outliers, what training changed
embedding_job     the executor of kind ``embedding`` (the page or the CLI submits it)

Maps never submit jobs themselves (they don't import the runner).
"""
