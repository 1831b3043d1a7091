"""Inference workers: llama.cpp on Kafka, litellm routing, budgets, token accounting."""

__all__: list[str] = []
