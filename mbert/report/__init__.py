"""Report stage: Weights & Biases logging and the offline HTML/Markdown report."""
