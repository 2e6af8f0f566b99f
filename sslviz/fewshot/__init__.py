"""Few-shot labels -> a predicted label, with confidence, for every image (DESIGN 3.6).

labeling      labeling sessions: labels saved at once, label names, undo, CSV import
labels_csv    reading (checked, one-line errors naming rows) and writing label/prediction CSVs
predictors    logreg, kNN, label spreading, the UMAP ones, self-training, ensemble, Poisson
graph         kNN graphs of an embedding and label spreading on them
poisson       Poisson learning on a graph of all images, for very few labels
poisson_kept  its label-independent work (views, each label's unit potential), kept
geometry      the 10-D UMAP of an embedding the UMAP predictors use, cached beside it
kept, saved_views   what prediction derives from an embedding alone, computed once and kept
estimate      THE cross-validated accuracy with a Wilson interval; "auto"'s choice
enough        when labels are too few to measure anything
coverage      does an image look like any labeled group at all (``covered``)
suggest       what to label next: TypiClust at cold start, then margin + k-center
predict       predict(store, dataset, source, labels) for the CLI, the page, the leaderboard
export        predictions CSV, labels CSV, parquet with embeddings, map, labels, predictions
monitor       a pretext run's feature-quality measure at its checkpoints
finetune      a fine-tune run on the labels (submit; the public names of the modules below)
finetune_data, finetune_model, finetune_loop, finetune_result, finetune_answer
              its settings, split, augmentations; model; loop (LP-FT, FixMatch); predictions;
              which of its two answers ``--out`` writes
leaderboard, leaderboard_rows   which source predicts the labels best; how one row is scored
leaderboard_job   ranking the sources as a job (kind ``leaderboard``): submit, execute, its board
leaderboard_choice   a source chosen on a session's labels, said beside its estimate
"""
