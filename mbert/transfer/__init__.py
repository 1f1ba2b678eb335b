"""Transfer stage: tasks, fine-tuning with freezing / alignment, zero-shot evaluation."""
