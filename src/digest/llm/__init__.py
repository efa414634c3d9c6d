"""The LLM stage: bilingual summaries via any OpenAI-compatible endpoint, validated, cached, costed."""
