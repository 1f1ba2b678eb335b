"""Corpus stage: dump readers, wikitext cleaning, segmentation, dedup, sampling, shard writing."""
