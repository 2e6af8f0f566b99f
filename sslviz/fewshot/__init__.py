"""Few-shot labels -> a predicted label, with confidence, for every image (DESIGN 3.6).

sessions     labeling sessions: labels saved at once, label names, undo, CSV import
labels_csv   reading (checked, one-line errors naming rows) and writing label/prediction CSVs
predictors   logistic regression, weighted kNN, label spreading on a sparse kNN graph
estimate     THE cross-validated accuracy with a Wilson interval; "auto"'s choice
suggest      what to label next: TypiClust at cold start, then margin + k-center
predict      predict(store, dataset, source, labels) for the CLI, the page, the leaderboard
export       predictions CSV, labels CSV, parquet with embeddings, map, labels, predictions
finetune     a fine-tune run on the labels (submit; the public names of the four below)
finetune_data, finetune_model, finetune_loop, finetune_result
             its settings, split, augmentations; model; loop (LP-FT, FixMatch); predictions
leaderboard, leaderboard_rows   which source predicts the labels best; how one row is scored
"""
